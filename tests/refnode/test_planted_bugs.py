"""The catalogue's planted bugs, each on real refnode processes: off by default, and with the
switch on the node misbehaves the way the scenario that catches it expects.

- ``REFNODE_MAX_ENVELOPE_AGE_S``: replication refuses envelopes older than the bound (by the
  receiver's clock), so skewed or delayed envelopes stall a stream (clock-skew).
- ``REFNODE_FOLLOW_REGISTERED``: a node follows nodes removed from the canonical set (churn).
- ``REFNODE_WRITE_BEHIND_MS``: publishes are acknowledged before they are stored, so a crash
  loses acknowledged envelopes (aggressive-chaos).
- ``REFNODE_DB_RECONNECT=0``: broken database connections are never replaced (server-restart).
"""

from __future__ import annotations

import time

import grpc
import psycopg
import pytest

from refnode.config import ConfigError, NodeConfig
from refnode.envelopes import Signer
from refnode.proto import refnode_pb2 as pb
from shakedown.client import payer_envelopes
from shakedown.observe import read_envelope_digests, read_vector_clock
from shakedown.procs.cluster import ProcessCluster as Cluster
from shakedown.waiting import wait_for

# The process-cluster tests take 10-25 s each on the shared machine (about 90 s together): they
# run with the catalogue, whose failure runs they back; the default lane keeps the config test.
on_processes = pytest.mark.catalogue

BASE = {"REFNODE_SIGNER_KEY": "0x" + "11" * 32, "REFNODE_DB_DSN": "postgresql://x/y",
        "REFNODE_CHAIN_RPC": "http://127.0.0.1:1", "REFNODE_NODE_REGISTRY": "0x" + "0" * 40,
        "REFNODE_RATE_REGISTRY": "0x" + "0" * 40}


def sequence_of(env: pb.OriginatorEnvelope) -> int:
    return pb.UnsignedOriginatorEnvelope.FromString(
        env.unsigned_originator_envelope).originator_sequence_id


def clock_of(cluster: Cluster, node_id: int) -> dict[int, int]:
    with cluster.db(node_id) as conn:
        return read_vector_clock(conn)


def test_the_switches_are_off_by_default_and_refuse_nonsense() -> None:
    config = NodeConfig.from_env(BASE)
    assert (config.max_envelope_age_s, config.follow_registered, config.write_behind_ms,
            config.db_reconnect) == (0.0, False, 0.0, True)
    for name in ("REFNODE_MAX_ENVELOPE_AGE_S", "REFNODE_WRITE_BEHIND_MS"):
        with pytest.raises(ConfigError, match=f"{name}=-1 must not be negative"):
            NodeConfig.from_env({**BASE, name: "-1"})
    with pytest.raises(ConfigError, match="REFNODE_DB_RECONNECT='maybe' is not a boolean"):
        NodeConfig.from_env({**BASE, "REFNODE_DB_RECONNECT": "maybe"})


@on_processes
def test_max_envelope_age_refuses_old_envelopes_and_stalls_the_stream(
        cluster: Cluster, payer_signers: list[Signer]) -> None:
    a = cluster.add_node()
    strict = cluster.add_node(extra_env={"REFNODE_MAX_ENVELOPE_AGE_S": "0.5"}, start=False)
    lenient = cluster.add_node(start=False)
    with cluster.nodes[a].client() as client:
        acked = client.publish(payer_envelopes(payer_signers[0], a, 20))
    born = time.time()
    wait_for(time.time, lambda now: now - born > 1.0, timeout=5, interval=0.1,
             what="node a's envelopes older than 1 s")
    cluster.nodes[strict].start()
    cluster.nodes[lenient].start()
    wait_for(lambda: clock_of(cluster, lenient).get(a, 0), lambda n: n == len(acked),
             timeout=30, what=f"node {lenient} (no bound) holds node {a}'s envelopes")
    wait_for(cluster.nodes[strict].log_tail, lambda log: "s old by this node's clock" in log,
             timeout=30, what=f"node {strict} refuses node {a}'s old envelopes")
    assert clock_of(cluster, strict).get(a, 0) == 0, "the bounded node stored old envelopes"


@on_processes
def test_follow_registered_keeps_replicating_a_node_that_left(
        three_nodes: Cluster, payer_signers: list[Signer]) -> None:
    honest, left = sorted(three_nodes.nodes)[1:]
    buggy = three_nodes.add_node(extra_env={"REFNODE_FOLLOW_REGISTERED": "1"})
    three_nodes.chain.remove_from_network(left)
    with three_nodes.nodes[honest].client() as client:
        wait_for(lambda: list(client.health().replicating_from),
                 lambda following: left not in following, timeout=20,
                 what=f"node {honest} stops following node {left}")
    with three_nodes.nodes[left].client() as client:
        client.publish(payer_envelopes(payer_signers[0], left, 10))
    wait_for(lambda: clock_of(three_nodes, buggy).get(left, 0), lambda n: n == 10, timeout=20,
             what=f"node {buggy} (planted bug) still replicates node {left}")
    with three_nodes.nodes[buggy].client() as client:
        assert left in client.health().replicating_from
    assert clock_of(three_nodes, honest).get(left, 0) == 0


@on_processes
def test_write_behind_acknowledges_what_a_crash_then_loses(
        cluster: Cluster, payer_signers: list[Signer]) -> None:
    node = cluster.add_node(extra_env={"REFNODE_WRITE_BEHIND_MS": "3000"})
    with cluster.nodes[node].client() as client:
        acked = client.publish(payer_envelopes(payer_signers[0], node, 5))
    assert len(acked) == 5
    cluster.nodes[node].kill()
    cluster.nodes[node].start()
    with cluster.db(node) as conn:
        stored = read_envelope_digests(conn, node)
    assert not stored, f"write-behind stored {len(stored)} of 5 before the crash"
    with cluster.nodes[node].client() as client:  # the sequence ids are handed out again
        again = client.publish(payer_envelopes(payer_signers[0], node, 1))
    assert [sequence_of(e) for e in again] == [sequence_of(acked[0])] == [1]
    assert again[0].SerializeToString() != acked[0].SerializeToString()


@on_processes
def test_without_the_switch_an_acknowledged_envelope_survives_a_crash(
        cluster: Cluster, payer_signers: list[Signer]) -> None:
    node = cluster.add_node()
    with cluster.nodes[node].client() as client:
        client.publish(payer_envelopes(payer_signers[0], node, 5))
    cluster.nodes[node].kill()
    with cluster.db(node) as conn:
        assert len(read_envelope_digests(conn, node)) == 5


def _cut_connections(cluster: Cluster, node_id: int) -> int:
    """Terminate every session of the node's database, as a server restart does."""
    database = cluster.nodes[node_id].env["REFNODE_DB_DSN"].rsplit("/", 1)[1]
    with psycopg.connect(cluster.postgres.dsn("postgres"), autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            (database,)).fetchall()
    return len(rows)


def _publishes(cluster: Cluster, node_id: int, signer: Signer) -> bool:
    try:
        with cluster.nodes[node_id].client() as client:
            return len(client.publish(payer_envelopes(signer, node_id, 1))) == 1
    except grpc.RpcError:
        return False


@on_processes
def test_db_reconnect_off_never_replaces_broken_connections(
        cluster: Cluster, payer_signers: list[Signer]) -> None:
    healthy = cluster.add_node()
    fixed = cluster.add_node(extra_env={"REFNODE_DB_RECONNECT": "0"})
    for node in (healthy, fixed):
        assert _publishes(cluster, node, payer_signers[0])
        assert _cut_connections(cluster, node) > 0
    wait_for(lambda: _publishes(cluster, healthy, payer_signers[0]), bool, timeout=30,
             what=f"node {healthy} publishes again on new connections")
    tries = [_publishes(cluster, fixed, payer_signers[0]) for _ in range(10)]
    assert not any(tries), "the fixed connections came back by themselves"
