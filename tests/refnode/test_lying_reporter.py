"""A node whose payer reports lie (REFNODE_LIE_IN_REPORTS) among honest ones: the peers refuse
to attest, nothing of it reaches the chain, the honest reports settle, and verify's audit
names the liar; peers that attest without comparing (REFNODE_ATTEST_BLINDLY) let it through."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from refnode.envelopes import Signer
from shakedown.client import payer_envelopes
from shakedown.keys import payer
from shakedown.procs.cluster import ProcessCluster
from shakedown.verify.report_audit import check_reports_agree
from shakedown.waiting import wait_for
from tests.refnode.payer import REJECTED, report_env, reports, wait_settled

LIES = "fee,range,payers"


@pytest.fixture
def payers(cluster: ProcessCluster) -> list[LocalAccount]:
    accounts = [payer(0), payer(1)]
    for account in accounts:
        cluster.chain.fund_payer(account, 10**9)
    return accounts


def publish(cluster: ProcessCluster, node_id: int, accounts: list[LocalAccount],
            count: int) -> None:
    with cluster.nodes[node_id].client() as client:
        for k in range(count):
            signer = Signer(bytes(accounts[k % len(accounts)].key))
            client.publish(payer_envelopes(signer, node_id, 1))


def rejected_by(cluster: ProcessCluster, node: int, originator: int) -> int:
    return sum(1 for r in reports(cluster, node) if r.originator == originator
               and r.attestation == 2)


def test_honest_peers_refuse_a_lying_reporter_and_settle_their_own(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    a, b, liar = (cluster.add_node(extra_env=report_env(cluster, **s))
                  for s in ({}, {}, {"lie_in_reports": LIES}))
    publish(cluster, liar, payers, 10)
    publish(cluster, a, payers, 6)
    for peer in (a, b):  # one report per lie, in turn: fee, range, payers
        wait_for(lambda p=peer: rejected_by(cluster, p, liar), lambda n: n >= 3, timeout=90,
                 what=f"node {peer} rejecting three of node {liar}'s reports")
    wait_settled(cluster, {a: 6}, [a, b, liar])
    assert cluster.chain.payer_report_count(liar) == 0, "no lie reaches the chain"
    own = wait_for(lambda: [r for r in reports(cluster, liar) if r.originator == liar],
                   lambda rows: sum(r.submission == REJECTED for r in rows) >= 3, timeout=30,
                   what=f"node {liar} giving up three of its reports")
    assert not any(r.submission in (1, 2) for r in own), own
    with cluster.db(a) as conn:
        problems = check_reports_agree(conn, f"node-{a}")
    assert len(problems) == 1, problems
    assert f"payer report(s) of node {liar} that disagree" in problems[0]
    assert "rejected by this node" in problems[0]


def test_blind_attesters_let_a_lie_reach_the_chain(
        cluster: ProcessCluster, payers: list[LocalAccount]) -> None:
    a, _, liar = (cluster.add_node(extra_env=report_env(cluster, **s))
                  for s in ({"attest_blindly": "1"}, {"attest_blindly": "1"},
                            {"lie_in_reports": "fee"}))
    publish(cluster, liar, payers, 6)
    wait_for(lambda: cluster.chain.payer_report_count(liar), lambda n: n >= 1, timeout=90,
             what=f"node {liar}'s lying report submitted")
    with cluster.db(a) as conn:
        wait_for(lambda: check_reports_agree(conn, f"node-{a}"),
                 lambda found: found and "on-chain" in found[0], timeout=60,
                 what=f"node {a} holding the lie as submitted on-chain")
