"""The publish API's rejections, a rogue peer on replication, and the gateway path."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest

from refnode import envelopes as e
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from shakedown.client import GatewayClient, NodeClient, client_envelopes, payer_envelopes
from shakedown.keys import gateway, node_owner, node_signer, payer
from shakedown.observe import read_envelope_count, read_payer_of_envelopes, read_vector_clock
from shakedown.ports import free_port
from shakedown.procs.cluster import ProcessCluster
from shakedown.waiting import wait_for

PAYER = e.Signer(bytes(payer(0).key))


def publish_error(cluster: ProcessCluster, node_id: int, envs: list[pb.PayerEnvelope]):
    with cluster.nodes[node_id].client() as client, pytest.raises(grpc.RpcError) as err:
        client.publish(envs)
    return err.value


def test_bad_envelopes_are_rejected_and_nothing_is_stored(cluster: ProcessCluster) -> None:
    node = cluster.add_node()
    forged = payer_envelopes(PAYER, node, 1)[0]
    forged.payer_signature = b"\x00" * 65
    garbage = e.sign_payer_envelope(PAYER, b"\xff\xff\xff", node)
    elsewhere = payer_envelopes(PAYER, 999, 1)[0]
    for bad in (forged, garbage, elsewhere):
        # a bad envelope sinks its whole batch: the good one beside it is not stored either
        err = publish_error(cluster, node, [payer_envelopes(PAYER, node, 1)[0], bad])
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    with grpc.insecure_channel(cluster.nodes[node].endpoint) as channel:
        raw = channel.unary_unary("/refnode.v1.ReplicationApi/PublishPayerEnvelopes")
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\x0a\xff\xff\xff\x0f", timeout=5)  # a field claiming more bytes than follow
        assert err.value.code() != grpc.StatusCode.OK
    with cluster.db(node) as conn:
        assert read_envelope_count(conn) == 0
    with cluster.nodes[node].client() as client:  # and it keeps serving
        assert len(client.publish(payer_envelopes(PAYER, node, 3))) == 3


class RoguePeer(rpc.ReplicationApiServicer):
    """A registered node that serves forged envelopes on its replication stream."""

    def __init__(self, node_id: int, envelopes: list[pb.OriginatorEnvelope]):
        self.node_id = node_id
        self.envelopes = envelopes
        self.subscriptions = 0
        self.lock = threading.Lock()

    def SubscribeEnvelopes(self, request, context):
        with self.lock:
            self.subscriptions += 1
        for env in self.envelopes:  # one message each, so a valid prefix can be stored
            yield pb.SubscribeEnvelopesResponse(envelopes=[env])
        threading.Event().wait(0.2)  # then end the stream; the follower reconnects


def forged_stream(kind: str, node_id: int, key: e.Signer) -> list[pb.OriginatorEnvelope]:
    def make(seq: int, signer: e.Signer = key, originator: int = node_id):
        unsigned = pb.UnsignedOriginatorEnvelope(
            originator_node_id=originator, originator_sequence_id=seq, originator_ns=seq,
            payer_envelope_bytes=payer_envelopes(PAYER, node_id, 1)[0].SerializeToString())
        return e.sign_originator_envelope(signer, unsigned)
    if kind == "wrong-signer":
        return [make(1, signer=PAYER)]
    if kind == "wrong-originator":
        return [make(1, originator=node_id + 1)]
    if kind == "tampered":
        env = make(1)
        env.unsigned_originator_envelope = env.unsigned_originator_envelope.replace(
            b"\x10\x01", b"\x10\x02", 1)
        return [env]
    if kind == "gap":
        return [make(1), make(3)]
    raise ValueError(kind)


@pytest.mark.parametrize("kind,kept", [("wrong-signer", 0), ("wrong-originator", 0),
                                       ("tampered", 0), ("gap", 1)])
def test_rogue_peer_envelopes_are_refused(cluster: ProcessCluster, kind: str, kept: int) -> None:
    honest = cluster.add_node()
    n = len(cluster.chain.all_nodes())
    port = free_port()
    rogue_id = cluster.chain.register_node(node_owner(n).address, node_signer(n).address,
                                           f"127.0.0.1:{port}")
    rogue = RoguePeer(rogue_id, forged_stream(kind, rogue_id,
                                              e.Signer(bytes(node_signer(n).key))))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_ReplicationApiServicer_to_server(rogue, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        cluster.chain.add_to_network(rogue_id)
        wait_for(lambda: rogue.subscriptions, lambda s: s >= 3, timeout=30,
                 what=f"node {honest} re-subscribing to the rogue node {rogue_id}")
    finally:
        server.stop(0)
    with cluster.db(honest) as conn:
        assert read_vector_clock(conn).get(rogue_id, 0) == kept
        assert read_envelope_count(conn) == kept
    with cluster.nodes[honest].client() as client:
        assert client.health().serving
        assert len(client.publish(payer_envelopes(PAYER, honest, 2))) == 2


def test_publish_through_gateway_lands_with_gateway_as_payer(cluster: ProcessCluster) -> None:
    a, b = cluster.add_node(), cluster.add_node()
    gw = cluster.add_gateway()
    with GatewayClient(gw.endpoint) as client:
        assert client.health().payer_address == gateway(0).address
        picked = [x for _ in range(4) for x in client.publish(client_envelopes(5))]
        aimed = client.publish(client_envelopes(5), target_node_id=b)
        with pytest.raises(grpc.RpcError) as err:
            client.publish(client_envelopes(1), target_node_id=999)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert {e.open_originator_envelope(x).node_id for x in aimed} == {b}
    assert all(e.open_originator_envelope(x).payer.payer == gateway(0).address
               for x in picked + aimed)
    with cluster.db(b) as conn:
        payers = set(read_payer_of_envelopes(conn, b).values())
    assert payers == {gateway(0).address}
    counts = {}
    for x in picked:
        opened = e.open_originator_envelope(x)
        counts[opened.node_id] = counts.get(opened.node_id, 0) + 1
    assert set(counts) == {a, b}, f"the gateway should spread requests over nodes: {counts}"


def test_a_follower_catching_up_gets_big_pages(cluster: ProcessCluster) -> None:
    """Subscription messages carry up to SUBSCRIBE_PAGE envelopes, so a follower that is
    behind stores them in few big transactions (a query page stays at 500)."""
    node = cluster.add_node()
    with NodeClient(cluster.nodes[node].endpoint, timeout=120) as client:
        for _ in range(3):
            client.publish(payer_envelopes(PAYER, node, 400))
    with grpc.insecure_channel(cluster.nodes[node].endpoint) as channel:
        stream = rpc.ReplicationApiStub(channel).SubscribeEnvelopes(
            pb.SubscribeEnvelopesRequest(originator_node_ids=[node],
                                         last_seen=pb.Cursor(node_id_to_sequence_id={node: 0})),
            timeout=30)
        first = next(iter(stream))
        stream.cancel()
    assert len(first.envelopes) == 1200
