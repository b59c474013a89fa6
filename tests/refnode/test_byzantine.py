"""A byzantine node (REFNODE_BYZANTINE) among honest ones: its peers refuse its bad streams,
keep only its valid envelopes and the evidence, and stay live; a node that trusts its peers
(REFNODE_TRUST_PEERS) stores the forgeries."""

from __future__ import annotations

import re

import psycopg

from refnode import envelopes as e
from shakedown.client import payer_envelopes
from shakedown.keys import payer
from shakedown.observe import read_envelope_digests, read_vector_clock
from shakedown.procs.cluster import ProcessCluster
from shakedown.verify.misbehaviour import check_misbehaviour, proven, read_refusals
from shakedown.waiting import wait_for

PAYER = e.Signer(bytes(payer(0).key))
ROGUE = {"REFNODE_BYZANTINE": "equivocate,gap,stale"}
KINDS = {"equivocation", "gap", "stale"}


def kinds_refused(cluster: ProcessCluster, node: int, offender: int) -> set[str]:
    with cluster.db(node) as conn:
        return {r.kind for r in read_refusals(conn) if r.offender == offender}


def originator_digests(cluster: ProcessCluster, node: int, originator: int) -> dict[int, str]:
    with cluster.db(node) as conn:
        return {s: d for (_, s), d in read_envelope_digests(conn, originator).items()}


def clock_of(conn: psycopg.Connection, originator: int) -> int:
    return read_vector_clock(conn).get(originator, 0)


def test_honest_nodes_refuse_a_byzantine_peer_and_keep_its_valid_envelopes(
        cluster: ProcessCluster) -> None:
    rogue = cluster.add_node(ROGUE)
    honest = cluster.add_node()
    with cluster.nodes[rogue].client() as client:
        for _ in range(4):
            client.publish(payer_envelopes(PAYER, rogue, 5))
    wait_for(lambda: kinds_refused(cluster, honest, rogue), lambda k: k >= KINDS, timeout=60,
             what=f"node {honest} refusing every kind of node {rogue}'s misbehaviour")
    own = originator_digests(cluster, rogue, rogue)
    assert sorted(own) == list(range(1, 21))
    assert originator_digests(cluster, honest, rogue) == own, "only the valid envelopes, as sent"

    with cluster.db(honest) as conn:
        refusals = [r for r in read_refusals(conn) if r.offender == rogue]
        signer = cluster.chain.get_node(rogue).signer
        assert all(proven(r, signer) for r in refusals), refusals
        problems = check_misbehaviour(conn, f"node-{honest}", {rogue: signer}, {rogue, honest})
    assert len(problems) == 1 and f"node {rogue}'s replication stream" in problems[0], problems
    for kind in sorted(KINDS):
        assert re.search(rf"{kind} at \d+ \((x\d+, )?proven\)", problems[0]), problems[0]

    # It stays live: its own envelopes still replicate to the rogue, which is honest that way.
    with cluster.nodes[honest].client() as client:
        client.publish(payer_envelopes(PAYER, honest, 3))
    with cluster.db(rogue) as conn:
        wait_for(lambda: clock_of(conn, honest), lambda n: n == 3, timeout=30,
                 what=f"node {rogue} replicating from node {honest}")


def test_a_node_that_trusts_its_peers_stores_the_forgeries(cluster: ProcessCluster) -> None:
    rogue = cluster.add_node({"REFNODE_BYZANTINE": "gap"})
    trusting = cluster.add_node({"REFNODE_TRUST_PEERS": "1"})
    with cluster.nodes[rogue].client() as client:
        client.publish(payer_envelopes(PAYER, rogue, 5))
    with cluster.db(trusting) as conn:
        wait_for(lambda: clock_of(conn, rogue), lambda n: n > 5, timeout=60,
                 what=f"node {trusting} taking node {rogue}'s envelope 7 after 5")
        assert not [r for r in read_refusals(conn) if r.offender == rogue]
    held = originator_digests(cluster, trusting, rogue)
    assert 6 not in held and 7 in held, f"a gap at 6 and a forgery at 7: {sorted(held)}"
