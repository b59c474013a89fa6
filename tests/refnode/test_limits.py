"""What keeps one client or peer from hurting the others, on real nodes over real gRPC: a client
over its rate is refused (and counted) while others are served; a subscriber that stops
reading falls behind without stalling the publish path or the other subscribers; a peer that
vanishes has its streams closed on the other side. Each with the switch that breaks it."""

from __future__ import annotations

import signal
import threading
from collections import Counter

import grpc
import pytest

from refnode import envelopes as e
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from shakedown.client import NodeClient, payer_envelopes
from shakedown.errors import TimeoutExpired
from shakedown.keys import payer
from shakedown.observe import read_vector_clock
from shakedown.procs.cluster import ProcessCluster
from shakedown.waiting import wait_for

PAYER = e.Signer(bytes(payer(0).key))


def hammer(endpoint: str, calls: int) -> Counter[str]:
    """``calls`` queries as fast as one connection takes them; the codes that came back."""
    codes: Counter[str] = Counter()
    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc.ReplicationApiStub(channel)
        futures = [stub.QueryEnvelopes.future(pb.QueryEnvelopesRequest(limit=1), timeout=60)
                   for _ in range(calls)]
        for f in futures:
            try:
                f.result()
                codes["OK"] += 1
            except grpc.RpcError as err:
                codes[err.code().name] += 1
    return codes


def counted(client: NodeClient, method: str) -> dict[str, int]:
    return {c.code: c.count for c in client.status().calls if c.method == method}


def test_a_client_over_its_rate_is_refused_counted_and_others_still_served(
        cluster: ProcessCluster) -> None:
    node = cluster.add_node({"REFNODE_RATE_LIMIT": "20"})
    codes = hammer(cluster.nodes[node].endpoint, 200)
    assert codes["RESOURCE_EXHAUSTED"] >= 100 and codes["OK"] >= 20, codes
    with cluster.nodes[node].client() as other:  # its own connection, its own budget
        assert len(other.publish(payer_envelopes(PAYER, node, 3))) == 3
        seen = counted(other, "QueryEnvelopes")
    assert seen["RESOURCE_EXHAUSTED"] == codes["RESOURCE_EXHAUSTED"], seen
    assert seen["OK"] == codes["OK"], seen


def test_without_a_rate_limit_a_client_takes_everything(cluster: ProcessCluster) -> None:
    node = cluster.add_node({"REFNODE_RATE_LIMIT": "0"})
    codes = hammer(cluster.nodes[node].endpoint, 200)
    assert codes == {"OK": 200}


class Stalled:
    """A subscriber to node 100's envelopes from the start that reads one message, stops
    reading until ``resume()``, then reads on; every sequence id seen lands in ``got``."""

    def __init__(self, endpoint: str):
        self.got: list[int] = []
        self._resume = threading.Event()
        self._channel = grpc.insecure_channel(endpoint, options=[("grpc.http2.bdp_probe", 0)])
        self._call = rpc.ReplicationApiStub(self._channel).SubscribeEnvelopes(
            pb.SubscribeEnvelopesRequest(originator_node_ids=[100]), timeout=120)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for k, message in enumerate(self._call):
                self.got += [pb.UnsignedOriginatorEnvelope.FromString(
                    env.unsigned_originator_envelope).originator_sequence_id
                    for env in message.envelopes]
                if k == 0:
                    self._resume.wait()
        except grpc.RpcError:
            pass  # cancelled by close()

    def resume(self) -> None:
        self._resume.set()

    def close(self) -> None:
        self._resume.set()
        self._call.cancel()
        self._thread.join(timeout=10)
        self._channel.close()


def stalled_subscriber_run(cluster: ProcessCluster, env: dict[str, str]
                           ) -> tuple[int, int, list[int], int]:
    """Node 100 (``env``) with a follower and a subscriber that stops reading; 1000 envelopes
    published meanwhile with a 10 s timeout each. Returns (acked while it stalled, what the
    follower held then, what the subscriber got once it read again, up to what node 100
    stored, and times a subscriber fell behind)."""
    node = cluster.add_node({"REFNODE_SUBSCRIBER_BUFFER": "100", **env})
    follower = cluster.add_node()
    with cluster.nodes[node].client() as client:
        client.timeout = 10
        client.publish(payer_envelopes(PAYER, node, 500, payload_size=200))  # fills the window
        slow = Stalled(cluster.nodes[node].endpoint)
        try:
            wait_for(lambda: slow.got, bool, timeout=30, what="the slow subscriber's first message")
            acked = 0
            try:
                for _ in range(25):
                    acked += len(client.publish(payer_envelopes(PAYER, node, 20,
                                                                payload_size=200)))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err
            with cluster.db(follower) as conn:
                held = read_vector_clock(conn).get(node, 0)
            behind = client.status().subscribers_behind
            slow.resume()
            stored = client.health().vector_clock.node_id_to_sequence_id[node]
            wait_for(lambda: slow.got[-1], lambda n: n >= stored, timeout=60,
                     what=f"the slow subscriber reading up to {stored}")
        finally:
            slow.close()
    return acked, held, slow.got, behind


def test_a_subscriber_that_stops_reading_stalls_nobody(cluster: ProcessCluster) -> None:
    acked, held, got, behind = stalled_subscriber_run(cluster, {})
    assert acked == 500, "every publish acknowledged while the subscriber did not read"
    assert behind >= 1, "its buffer overflowed: it fell behind"
    with cluster.db(200) as conn:
        wait_for(lambda: read_vector_clock(conn).get(100, 0), lambda n: n == 1000, timeout=30,
                 what="the follower holding all 1000")
    assert got == list(range(1, 1001)), "once it reads again, everything, in order, gap-free"
    assert held >= 500


@pytest.mark.long
def test_a_blocking_fanout_lets_one_subscriber_stall_the_publish_path(
        cluster: ProcessCluster) -> None:
    acked, held, got, behind = stalled_subscriber_run(cluster, {"REFNODE_BLOCKING_FANOUT": "1"})
    assert acked < 500 and behind == 0, (acked, behind)
    assert held < 1000
    assert got == list(range(1, len(got) + 1)), "slow, but still gap-free"


def streams_of(client: NodeClient, peer: int) -> list[str]:
    status = client.status()
    return ([f"serving {s.state}" for s in status.serving if s.peer_node_id == peer]
            + [f"following {s.state}" for s in status.following
               if s.peer_node_id == peer and s.state == "streaming"])


@pytest.mark.long
@pytest.mark.parametrize("keepalive", ["1", "0"])
def test_a_vanished_peers_streams_are_closed_on_the_other_side(
        cluster: ProcessCluster, keepalive: str) -> None:
    watcher = cluster.add_node({"REFNODE_KEEPALIVE_S": keepalive})
    vanishing = cluster.add_node()
    with cluster.nodes[watcher].client() as client:
        wait_for(lambda: sorted(streams_of(client, vanishing)), lambda s: s == [
            "following streaming", "serving live"], timeout=30, what="both streams up")
        cluster.nodes[vanishing].signal(signal.SIGSTOP)  # gone, its sockets still open
        if keepalive == "0":
            try:
                with pytest.raises(TimeoutExpired, match="still open"):
                    wait_for(lambda: streams_of(client, vanishing), lambda s: not s, timeout=5,
                             what="streams still open")
            finally:
                cluster.nodes[vanishing].kill()  # gone for good (no slow stop of a frozen node)
            return
        try:
            wait_for(lambda: streams_of(client, vanishing), lambda s: not s, timeout=15,
                     what="streams closed")
        finally:
            cluster.nodes[vanishing].signal(signal.SIGCONT)
        wait_for(lambda: sorted(streams_of(client, vanishing)), lambda s: s == [
            "following streaming", "serving live"], timeout=30, what="both streams back")
