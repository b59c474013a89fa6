"""Replication across real refnode processes: convergence, crash recovery, membership changes."""

from __future__ import annotations

import pytest

from refnode.envelopes import Signer
from shakedown.client import payer_envelopes
from shakedown.observe import (
    read_envelope_count,
    read_envelope_digests,
    read_sequence_gaps,
    read_unsettled_usage,
    read_vector_clock,
)
from shakedown.procs.cluster import ProcessCluster as Cluster
from shakedown.traffic import NodeTarget, Traffic
from shakedown.waiting import wait_for


def clocks(cluster: Cluster) -> dict[int, dict[int, int]]:
    out = {}
    for node_id in cluster.nodes:
        with cluster.db(node_id) as conn:
            out[node_id] = read_vector_clock(conn)
    return out


def wait_converged(cluster: Cluster, expected: dict[int, int], timeout: float = 60) -> None:
    """Every running node's vector clock equals ``expected``."""
    wait_for(lambda: clocks(cluster),
             lambda seen: all(clock == expected for clock in seen.values()),
             timeout=timeout, what=f"vector clocks equal {expected}")


def assert_identical_and_gapless(cluster: Cluster) -> None:
    digests = {}
    for node_id in cluster.nodes:
        with cluster.db(node_id) as conn:
            digests[node_id] = read_envelope_digests(conn)
            for originator in cluster.nodes:
                gaps = read_sequence_gaps(conn, originator)
                assert not gaps, f"node {node_id}: originator {originator} misses {gaps[:5]}"
    reference_id, reference = next(iter(digests.items()))
    for node_id, seen in digests.items():
        missing = set(reference) - set(seen)
        extra = set(seen) - set(reference)
        differ = [k for k in set(seen) & set(reference) if seen[k] != reference[k]]
        assert not (missing or extra or differ), (
            f"node {node_id} vs node {reference_id}: missing {sorted(missing)[:5]}, "
            f"extra {sorted(extra)[:5]}, different bytes {sorted(differ)[:5]}")


def test_thousand_envelopes_converge_on_three_nodes(three_nodes: Cluster,
                                                    payer_signers: list[Signer]) -> None:
    ids = sorted(three_nodes.nodes)
    per_node = {ids[0]: 334, ids[1]: 333, ids[2]: 333}
    for node_id, count in per_node.items():
        with three_nodes.nodes[node_id].client() as client:
            for start in range(0, count, 100):
                batch = payer_envelopes(payer_signers[start // 100 % 3], node_id,
                                        min(100, count - start))
                assert len(client.publish(batch)) == len(batch)
    wait_converged(three_nodes, per_node)
    assert_identical_and_gapless(three_nodes)
    for node_id in ids:
        with three_nodes.db(node_id) as conn:
            assert read_envelope_count(conn) == 1000
            usage = read_unsettled_usage(conn)
            assert sum(u.message_count for u in usage.values()) == 1000
            assert {o for (_, o) in usage} == set(ids)


def test_killed_node_catches_up_without_gap_or_duplicate(three_nodes: Cluster,
                                                         payer_signers: list[Signer]) -> None:
    a, b, victim = sorted(three_nodes.nodes)
    traffic = Traffic([NodeTarget(three_nodes.nodes[a].endpoint, a),
                       NodeTarget(three_nodes.nodes[b].endpoint, b)],
                      rate=400, duration_s=30, max_envelopes=3000, batch=20,
                      payers=payer_signers).start()
    wait_for(lambda: traffic.stats.acked, lambda n: n >= 300, timeout=30,
             what="acks before the kill")
    three_nodes.nodes[victim].kill()
    wait_for(lambda: traffic.stats.acked, lambda n: n >= 1200, timeout=30,
             what="acks while the victim is down")
    three_nodes.nodes[victim].start()
    stats = traffic.wait()
    assert stats.failed == 0, stats.errors
    expected = {a: 0, b: 0}
    for ack in stats.acks:
        expected[ack.originator_node_id] += 1
    wait_converged(three_nodes, expected)
    assert_identical_and_gapless(three_nodes)
    with three_nodes.db(victim) as conn:
        digests = read_envelope_digests(conn)
    acked = {(x.originator_node_id, x.sequence_id): x.digest for x in stats.acks}
    assert {k: digests.get(k) for k in acked} == acked, "an acknowledged envelope differs"


def test_removed_node_is_not_replicated_and_resumes_when_readded(
        three_nodes: Cluster, payer_signers: list[Signer]) -> None:
    a, b, removed = sorted(three_nodes.nodes)
    payer = payer_signers[0]
    three_nodes.chain.remove_from_network(removed)
    for node_id in (a, b):
        with three_nodes.nodes[node_id].client() as client:
            wait_for(lambda c=client: list(c.health().replicating_from),
                     lambda following: removed not in following, timeout=20,
                     what=f"node {node_id} stops following {removed}")
    with three_nodes.nodes[removed].client() as client:
        client.publish(payer_envelopes(payer, removed, 50))
    with three_nodes.nodes[a].client() as client:
        client.publish(payer_envelopes(payer, a, 10))
    # b receives a's later envelopes, so its streams are live; none of removed's may arrive.
    wait_for(lambda: clocks(three_nodes)[b].get(a, 0), lambda n: n == 10, timeout=20,
             what=f"node {b} has node {a}'s envelopes")
    for node_id in (a, b):
        assert clocks(three_nodes)[node_id].get(removed, 0) == 0, (
            f"node {node_id} replicated from node {removed} while it was not canonical")
    three_nodes.chain.add_to_network(removed)
    wait_converged(three_nodes, {a: 10, removed: 50})
    assert_identical_and_gapless(three_nodes)


@pytest.mark.parametrize("sync", ["false"])
def test_sync_switch_off_stops_replication(cluster: Cluster, payer_signers: list[Signer],
                                           sync: str) -> None:
    a = cluster.add_node()
    b = cluster.add_node(extra_env={"REFNODE_SYNC_ENABLED": sync})
    with cluster.nodes[a].client() as client:
        client.publish(payer_envelopes(payer_signers[0], a, 20))
    with cluster.nodes[b].client() as client:
        assert not client.health().sync_enabled
        client.publish(payer_envelopes(payer_signers[0], b, 5))
    wait_for(lambda: clocks(cluster)[a], lambda c: c.get(b) == 5, timeout=20,
             what=f"node {a} replicates node {b}")
    assert clocks(cluster)[b].get(a, 0) == 0, f"node {b} replicated with sync off"
