"""What a node refuses on its publish API, each with its gRPC status and nothing stored: bad
signatures, a node's key as payer, out-of-bounds retention and sizes, replays; and what a
node that does not check payer signatures (REFNODE_CHECK_PAYER_SIGNATURES=0) stores."""

from __future__ import annotations

import grpc
import pytest

from refnode import envelopes as e
from refnode.admission import MAX_CLIENT_ENVELOPE, MAX_REQUEST
from refnode.proto import refnode_pb2 as pb
from shakedown.client import payer_envelopes
from shakedown.keys import node_signer, payer
from shakedown.observe import read_envelope_count
from shakedown.procs.cluster import ProcessCluster

PAYER = e.Signer(bytes(payer(0).key))
CODE = grpc.StatusCode


def refusal(cluster: ProcessCluster, node: int, envs: list[pb.PayerEnvelope]) -> grpc.RpcError:
    with cluster.nodes[node].client() as client, pytest.raises(grpc.RpcError) as err:
        client.publish(envs)
    return err.value


def signed(body: bytes, node: int, key: e.Signer = PAYER, retention: int = 30
           ) -> pb.PayerEnvelope:
    return e.sign_payer_envelope(key, body, node, retention)


def stored(cluster: ProcessCluster, node: int) -> int:
    with cluster.db(node) as conn:
        return read_envelope_count(conn)


def test_every_rule_refuses_with_its_status_and_nothing_is_stored(
        cluster: ProcessCluster) -> None:
    node = cluster.add_node()
    body = e.client_envelope(b"topic/fuzz", b"x" * 32)
    high_s = signed(body, node)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(high_s.payer_signature[32:64], "big")
    high_s.payer_signature = (high_s.payer_signature[:32] + (n - s).to_bytes(32, "big")
                              + bytes([1 - high_s.payer_signature[64]]))
    cases = {
        "high-s signature": ([high_s], CODE.INVALID_ARGUMENT, "not canonical"),
        "short signature": ([pb.PayerEnvelope(unsigned_client_envelope=body,
                                              payer_signature=b"\x01" * 64,
                                              target_originator=node,
                                              message_retention_days=30)],
                            CODE.INVALID_ARGUMENT, "65 bytes"),
        "a node's key pays": ([signed(body, node, e.Signer(bytes(node_signer(0).key)))],
                              CODE.PERMISSION_DENIED, "nodes do not pay"),
        "retention 0": ([signed(body, node, retention=0)], CODE.INVALID_ARGUMENT,
                        "retention of 0 days"),
        "retention too long": ([signed(body, node, retention=100_000)], CODE.INVALID_ARGUMENT,
                               "retention of 100000 days"),
        "oversized envelope": ([signed(e.client_envelope(b"t", b"x" * MAX_CLIENT_ENVELOPE),
                                       node)], CODE.INVALID_ARGUMENT, "at most"),
        "the same twice": ([signed(body, node), signed(body, node)], CODE.ALREADY_EXISTS,
                           "repeats envelope 0"),
        "no topic": ([signed(pb.ClientEnvelope(payload=b"p").SerializeToString(), node)],
                     CODE.INVALID_ARGUMENT, "no topic"),
    }
    for what, (envs, code, fragment) in cases.items():
        err = refusal(cluster, node, envs)
        assert (err.code(), fragment in (err.details() or "")) == (code, True), \
            f"{what}: {err.code()} {err.details()}"
    oversized = pb.PublishPayerEnvelopesRequest(payer_envelopes=[
        signed(e.client_envelope(b"t", b"x" * (MAX_CLIENT_ENVELOPE - 64)), node)
        for _ in range(MAX_REQUEST // MAX_CLIENT_ENVELOPE + 1)])
    with grpc.insecure_channel(cluster.nodes[node].endpoint, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        raw = channel.unary_unary("/refnode.v1.ReplicationApi/PublishPayerEnvelopes")
        with pytest.raises(grpc.RpcError) as err:
            raw(oversized.SerializeToString(), timeout=30)
    assert err.value.code() == CODE.RESOURCE_EXHAUSTED, err.value.details()
    assert stored(cluster, node) == 0


def test_a_replayed_envelope_is_refused_and_stored_once(cluster: ProcessCluster) -> None:
    node = cluster.add_node()
    first = payer_envelopes(PAYER, node, 3)
    with cluster.nodes[node].client() as client:
        assert len(client.publish(first)) == 3
    for replay in ([first[1]], [*payer_envelopes(PAYER, node, 2), first[0]]):
        err = refusal(cluster, node, replay)
        assert err.code() == CODE.ALREADY_EXISTS and "published before" in err.details()
    cluster.nodes[node].restart()  # what was taken is remembered in the database
    assert refusal(cluster, node, [first[2]]).code() == CODE.ALREADY_EXISTS
    assert stored(cluster, node) == 3, "only the first copies, none of the batch beside them"


def test_a_node_that_does_not_check_payer_signatures_stores_a_bad_one(
        cluster: ProcessCluster) -> None:
    node = cluster.add_node({"REFNODE_CHECK_PAYER_SIGNATURES": "0"})
    bad = payer_envelopes(PAYER, node, 1)[0]
    bad.payer_signature = b"\x00" * 65
    with cluster.nodes[node].client() as client:
        assert len(client.publish([bad])) == 1
    assert stored(cluster, node) == 1
