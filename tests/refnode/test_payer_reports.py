"""The payer pipeline on real refnode processes, anvil and PostgreSQL.

Each node reports its own envelopes every second; peers attest only what their own copy
agrees with; a quorum (n/2+1 of the canonical nodes) submits; settlement charges payers and
every database mirrors the chain. Each test breaks one property on purpose (nodes that never
attest, a peer whose copy differs, an originator that misprices, a stopped node) and shows
where the pipeline stops.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from refnode.envelopes import Signer
from shakedown.client import payer_envelopes
from shakedown.keys import node_owner, payer
from shakedown.observe import read_vector_clock
from shakedown.procs.cluster import ProcessCluster
from shakedown.waiting import wait_for
from tests.refnode.payer import (
    REJECTED,
    SETTLED,
    envelope_fees,
    read_attestations,
    report_env,
    reports,
    settled_through,
    signer_of,
    wait_settled,
)

DEPOSIT = 10**9  # picodollars per payer: far above what the tests' envelopes cost


@pytest.fixture
def payers(cluster: ProcessCluster) -> list[LocalAccount]:
    accounts = [payer(0), payer(1)]
    for account in accounts:
        cluster.chain.fund_payer(account, DEPOSIT)
    return accounts


def start(cluster: ProcessCluster, *switches: dict[str, str]) -> list[int]:
    """Nodes 100, 200, ... with payer reports on, each with its switches."""
    return [cluster.add_node(extra_env=report_env(cluster, **s)) for s in switches]


def publish(cluster: ProcessCluster, node_id: int, account: LocalAccount, count: int) -> None:
    with cluster.nodes[node_id].client() as client:
        assert len(client.publish(payer_envelopes(Signer(bytes(account.key)), node_id,
                                                  count))) == count


def wait_replicated(cluster: ProcessCluster, nodes: list[int], expected: dict[int, int]) -> None:
    def clocks() -> dict[int, dict[int, int]]:
        out = {}
        for n in nodes:
            with cluster.db(n) as conn:
                out[n] = read_vector_clock(conn)
        return out
    wait_for(clocks, lambda seen: all(all(c.get(o, 0) >= s for o, s in expected.items())
                                      for c in seen.values()),
             timeout=30, what=f"nodes {nodes} hold {expected}")


@pytest.fixture
def healthy(cluster: ProcessCluster, payers: list[LocalAccount]) -> Iterator[ProcessCluster]:
    start(cluster, {}, {}, {})
    yield cluster


def test_reports_settle_with_a_quorum_and_money_is_conserved(
        healthy: ProcessCluster, payers: list[LocalAccount]) -> None:
    cluster, chain = healthy, healthy.chain
    ids = sorted(cluster.nodes)
    sent = {ids[0]: 30, ids[1]: 20, ids[2]: 10}
    for i, (node_id, count) in enumerate(sent.items()):
        publish(cluster, node_id, payers[i % 2], count)
    publish(cluster, ids[2], payers[1], 5)
    sent[ids[2]] += 5
    wait_settled(cluster, sent, ids)

    quorum = len(ids) // 2 + 1
    domain = chain.report_domain()
    on_chain = chain.all_payer_reports()
    for node_id in ids:
        rows = [r for r in reports(cluster, node_id) if r.submission == SETTLED]
        for row in rows:  # mirrored: every settled row is the chain's report, byte for byte
            record = on_chain[(row.originator, row.index)]
            assert (row.start, row.end, row.end_minute, row.payers_hash, row.node_ids) == (
                record.start_sequence_id, record.end_sequence_id,
                record.end_minute_since_epoch, record.payers_hash, record.node_ids), row
            assert record.is_settled
        with cluster.db(node_id) as conn:
            held = read_attestations(conn)
        for row in (r for r in rows if r.originator == node_id):  # the originator's quorum
            signers = {n: signer_of(row.id, sig) for n, sig in held[row.id].items()}
            valid = [n for n, a in signers.items() if a == chain.get_node(n).signer]
            assert len(valid) >= quorum, f"report {row.index} of {node_id}: {signers}"
            assert row.id == _spec(row).digest(domain)
    assert len(on_chain) == sum(1 for r in reports(cluster, ids[0]) if r.submission == SETTLED)

    # Money: each payer is charged exactly what its envelopes cost, to the unit.
    charged: dict[str, int] = {}
    with cluster.db(ids[1]) as conn:
        for o, end in sent.items():
            for p, fee in envelope_fees(conn, o, 0, end).items():
                charged[p] = charged.get(p, 0) + fee
    settled = sum(r.fees_settled for r in on_chain.values())
    assert settled == sum(charged.values()) == chain.payer_registry_totals()["settled"]
    for account in payers:
        assert chain.payer_balance(account.address) == DEPOSIT - charged[account.address]

    # The rest of the lifecycle: excess -> distributor, claims, node withdrawals, payer withdrawal.
    supply = chain.fee_token_supply()
    assert chain.send_excess_to_fee_distributor() == settled
    claimed = {}
    for n, node_id in enumerate(ids):
        keys = chain.claimable_reports(node_id)
        assert len(keys) == len(on_chain), f"node {node_id} may claim {keys}"
        claimed[node_id] = chain.claim(node_owner(n), node_id, keys)
        assert chain.owed_fees(node_id) == claimed[node_id]
        assert chain.withdraw(node_owner(n), node_id) == claimed[node_id]
        assert chain.fee_token_balance(node_owner(n).address) == claimed[node_id]
    assert sum(claimed.values()) + chain.protocol_fees() == settled
    assert chain.total_owed_fees() == 0

    unlock = chain.request_withdrawal(payers[0], 1_000)
    chain.advance_time(max(0, unlock - chain.chain_time()))
    assert chain.finalize_withdrawal(payers[0]) == 1_000
    assert chain.payer_balance(payers[0].address) == DEPOSIT - charged[payers[0].address] - 1_000
    assert chain.fee_token_supply() == supply, "nothing is minted or burnt along the way"
    holders = [*(a.address for a in payers), *(node_owner(n).address for n in range(3)),
               chain.addresses.payer_registry, chain.addresses.distribution_manager]
    assert sum(chain.fee_token_balance(h) for h in holders) == supply


def test_without_attestations_reports_stay_pending(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    a, b, c = start(cluster, {}, {"attest_enabled": "0"}, {"attest_enabled": "0"})
    publish(cluster, a, payers[0], 10)
    wait_for(lambda: reports(cluster, b), lambda rows: len(rows) >= 1, timeout=30,
             what=f"node {b} is asked to attest")
    publish(cluster, a, payers[0], 10)
    # The second report reaches the peers only after the first was asked about for a while.
    wait_for(lambda: reports(cluster, c), lambda rows: any(r.end == 20 for r in rows),
             timeout=30, what=f"node {c} is asked about the second report")
    own = reports(cluster, a)
    assert [(r.start, r.end, r.submission) for r in own] == [(0, 10, 0), (10, 20, 0)], own
    with cluster.db(a) as conn:
        held = read_attestations(conn)
    assert all(set(held[r.id]) == {a} for r in own), "only the originator signed"
    assert cluster.chain.payer_report_count(a) == 0, "submitted without a quorum"
    assert all(r.attestation == 0 for n in (b, c) for r in reports(cluster, n))
    assert cluster.chain.payer_balance(payers[0].address) == DEPOSIT

    # One node attesting again is enough for a quorum of 2: both reports go through in order.
    cluster.nodes[b].env["REFNODE_ATTEST_ENABLED"] = "1"
    cluster.nodes[b].restart()
    wait_settled(cluster, {a: 20}, [a, b, c])


def test_a_peer_whose_copy_differs_rejects(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    a, b, c = start(cluster, {}, {"attest_enabled": "0"}, {"attest_enabled": "0"})
    publish(cluster, a, payers[0], 6)
    publish(cluster, a, payers[1], 4)
    wait_replicated(cluster, [c], {a: 10})
    wait_for(lambda: reports(cluster, c), lambda rows: any(r.end == 10 for r in rows),
             timeout=30, what=f"node {c} holds the report")
    with cluster.db(c) as conn:  # node c's copy now says payer 1 paid for envelope 1
        conn.execute("UPDATE gateway_envelopes_meta SET payer_id = (SELECT id FROM payers "
                     "WHERE address = %s) WHERE originator_node_id = %s "
                     "AND originator_sequence_id = 1", (payers[1].address, a))
    cluster.nodes[c].env["REFNODE_ATTEST_ENABLED"] = "1"
    cluster.nodes[c].restart()
    wait_for(lambda: reports(cluster, c), lambda rows: rows and rows[0].attestation == 2,
             timeout=30, what=f"node {c} rejects the report")
    wait_for(cluster.nodes[a].logfile.read_text,
             lambda log: f"node {c} rejects report (0, 10]: payer" in log, timeout=30,
             what=f"node {a} hears node {c}'s rejection")
    assert [r.submission for r in reports(cluster, a)] == [0], "rejected by 1 of 3: pending"
    assert cluster.chain.payer_report_count(a) == 0

    cluster.nodes[b].env["REFNODE_ATTEST_ENABLED"] = "1"
    cluster.nodes[b].restart()
    wait_settled(cluster, {a: 10}, [a, b, c])
    (row,) = reports(cluster, c)
    assert (row.attestation, row.submission) == (2, SETTLED), "its verdict stays; the chain rules"


def test_a_mispricing_originator_is_never_paid(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    a, b, liar = start(cluster, {}, {}, {"price_multiplier": "3"})
    publish(cluster, liar, payers[0], 10)
    publish(cluster, a, payers[0], 10)
    wait_settled(cluster, {a: 10}, [a, b, liar])
    wait_for(lambda: reports(cluster, liar),
             lambda rows: any(r.originator == liar and r.submission == REJECTED for r in rows),
             timeout=30, what=f"node {liar}'s own report is rejected")
    for peer in (a, b):
        theirs = [r for r in reports(cluster, peer) if r.originator == liar]
        assert theirs and all(r.attestation == 2 for r in theirs), theirs
    liar_own = [r for r in reports(cluster, liar) if r.originator == a]
    assert liar_own[0].attestation == 2, "it prices honest envelopes wrong as well"
    assert cluster.chain.payer_report_count(liar) == 0
    with cluster.db(a) as conn:
        honest = envelope_fees(conn, a, 0, 10)[payers[0].address]
    assert cluster.chain.payer_balance(payers[0].address) == DEPOSIT - honest


def test_a_stopped_node_does_not_stop_settlement(
        healthy: ProcessCluster, payers: list[LocalAccount]) -> None:
    cluster = healthy
    a, b, down = sorted(cluster.nodes)
    cluster.nodes[down].stop()
    publish(cluster, a, payers[0], 10)
    wait_settled(cluster, {a: 10}, [a, b])
    (row,) = [r for r in reports(cluster, a) if r.submission == SETTLED]
    with cluster.db(a) as conn:
        assert set(read_attestations(conn)[row.id]) == {a, b}, "2 of 3 canonical nodes"
    cluster.nodes[down].start()
    wait_settled(cluster, {a: 10}, [down])  # mirrored from the chain after the restart
    wait_for(lambda: reports(cluster, down), lambda rows: rows[0].attestation == 1, timeout=30,
             what=f"node {down} judges the report it missed")
    assert settled_through(reports(cluster, down)) == {a: 10}


def test_a_node_that_does_not_mirror_keeps_others_reports_unsettled(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    """REFNODE_MIRROR_ENABLED=0: the node still settles and records its own reports, but
    never records that another originator's report settled (the DB-vs-chain drift that the
    settlement-verification scenario must catch)."""
    a, b, blind = start(cluster, {}, {}, {"mirror_enabled": "0"})
    publish(cluster, a, payers[0], 10)
    wait_settled(cluster, {a: 10}, [a, b])
    publish(cluster, blind, payers[1], 5)
    wait_settled(cluster, {blind: 5}, [blind])  # after a's report is long settled on-chain
    theirs = [r for r in reports(cluster, blind) if r.originator == a]
    assert theirs, "it judged a's report when asked, so it holds a row for it"
    assert all(r.submission != SETTLED for r in theirs), theirs
    wait_settled(cluster, {a: 10, blind: 5}, [b])  # a node that mirrors records both


def _spec(row):  # type: ignore[no-untyped-def]
    from refnode.report_spec import ReportSpec

    return ReportSpec(row.originator, row.start, row.end, row.end_minute, row.payers_hash,
                      row.node_ids)
