"""Wall time of one full payer lifecycle with short report intervals, against its chain floor.

Three refnode processes report every ``--interval`` seconds. After one publish per node the
script times, from the last acknowledgement: every originator's report created, attested by a
quorum, submitted, settled on-chain, mirrored into every database; then excess sent to the
distributor, every node's claim and withdrawal, and a payer withdrawal (lock passed by anvil
time travel). The floor is the same chain work issued bare in the same run, on a fresh
deployment on the same anvil: three submits with signatures made in-process, three settles,
the excess, three claims, three withdrawals and the payer withdrawal.

    .venv/bin/python bench/payer_lifecycle.py [--interval 2] [--envelopes 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount

from refnode.envelopes import Signer
from shakedown.chain import Chain, PayerReportSpec, deploy_contracts, payers_hash, sorted_payers
from shakedown.client import payer_envelopes
from shakedown.keys import admin_account, node_owner, node_signer, payer
from shakedown.machine import describe
from shakedown.procs.anvil import AnvilProcess
from shakedown.procs.cluster import ProcessCluster
from shakedown.procs.postgres import PostgresProcess
from shakedown.waiting import wait_for

DEPOSIT = 10**12
PHASES = ("created", "attested", "submitted", "settled", "mirrored")


def report_state(cluster: ProcessCluster, node_id: int, sent: dict[int, int]) -> set[str]:
    """Which phases node ``node_id``'s own report covering everything sent has reached."""
    with cluster.db(node_id) as conn:
        rows = conn.execute(
            "SELECT r.end_sequence_id, r.submission_status, count(a.node_id) FROM payer_reports r "
            "LEFT JOIN payer_report_attestations a ON a.payer_report_id = r.id "
            "WHERE r.originator_node_id = %s GROUP BY 1, 2", (node_id,)).fetchall()
    quorum = len(cluster.nodes) // 2 + 1
    reached = set()
    for end, submission, attestations in rows:
        if end >= sent[node_id]:
            reached.add("created")
            if attestations >= quorum:
                reached.add("attested")
            if submission >= 1:
                reached.add("submitted")
    return reached


def mirrored(cluster: ProcessCluster, sent: dict[int, int]) -> bool:
    for node_id in cluster.nodes:
        with cluster.db(node_id) as conn:
            ends: dict[int, int] = dict(conn.execute(
                "SELECT originator_node_id, max(end_sequence_id) FROM payer_reports "
                "WHERE submission_status = 2 GROUP BY 1").fetchall())
        if any(ends.get(o, 0) < end for o, end in sent.items()):
            return False
    return True


def settled_on_chain(chain: Chain, sent: dict[int, int]) -> bool:
    for originator, end in sent.items():
        reports = chain.payer_reports(originator)
        if not reports or not reports[-1].is_settled or reports[-1].end_sequence_id < end:
            return False
    return True


def lifecycle(cluster: ProcessCluster, payers: list[LocalAccount], per_node: int,
              timeout: float) -> dict[str, float]:
    chain = cluster.chain
    ids = sorted(cluster.nodes)
    sent = {}
    for i, node_id in enumerate(ids):
        with cluster.nodes[node_id].client() as client:
            acks = client.publish(payer_envelopes(Signer(bytes(payers[i % 2].key)), node_id,
                                                  per_node))
        sent[node_id] = len(acks)
    t0 = time.monotonic()
    marks: dict[str, float] = {}

    def phases() -> set[str]:
        states = [report_state(cluster, n, sent) for n in ids]
        done = {p for p in PHASES[:3] if all(p in s for s in states)}
        if "submitted" in done and settled_on_chain(chain, sent):
            done.add("settled")
            if mirrored(cluster, sent):
                done.add("mirrored")
        for phase in done:
            marks.setdefault(phase, time.monotonic() - t0)
        return done

    wait_for(phases, lambda done: "mirrored" in done, timeout=timeout, interval=0.05,
             what="report lifecycle")
    # One poll may see several phases at once; a later phase implies the earlier ones.
    ordered = {p: min(marks.get(q, marks["mirrored"]) for q in PHASES[i:])
               for i, p in enumerate(PHASES)}
    ordered.update(fee_flow(chain, ids, payers[0], t0))
    return ordered


def fee_flow(chain: Chain, ids: list[int], account: LocalAccount, t0: float) -> dict[str, float]:
    marks = {}
    chain.send_excess_to_fee_distributor()
    marks["excess"] = time.monotonic() - t0
    for n, node_id in enumerate(ids):
        chain.claim(node_owner(n), node_id, chain.claimable_reports(node_id))
    marks["claimed"] = time.monotonic() - t0
    for n, node_id in enumerate(ids):
        chain.withdraw(node_owner(n), node_id)
    marks["node withdrawals"] = time.monotonic() - t0
    unlock = chain.request_withdrawal(account, 1_000)
    chain.advance_time(max(0, unlock - chain.chain_time()))
    chain.finalize_withdrawal(account)
    marks["payer withdrawal"] = time.monotonic() - t0
    return marks


def node_phases(cluster: ProcessCluster) -> dict[str, float]:
    """Inside the nodes, from their logs: the slowest originator's report creation to its
    quorum submission, and to its settlement (seconds)."""
    import datetime
    import re

    def at(line: str) -> float:
        stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        return stamp.timestamp()

    worst: dict[str, float] = {"created -> submitted": 0.0, "created -> settled": 0.0}
    for proc in cluster.nodes.values():
        lines = proc.logfile.read_text().splitlines()
        created = [at(ln) for ln in lines if re.search(r"refnode.reports: report \(", ln)]
        submitted = [at(ln) for ln in lines if "refnode.reports: submitted report" in ln]
        settled = [at(ln) for ln in lines if "refnode.reports: settled report" in ln]
        if created and submitted and settled:
            worst["created -> submitted"] = max(worst["created -> submitted"],
                                                submitted[0] - created[0])
            worst["created -> settled"] = max(worst["created -> settled"],
                                              settled[0] - created[0])
    return worst


def floor(rpc_url: str, payers: list[LocalAccount]) -> float:
    """The lifecycle's chain transactions alone, on a fresh deployment of the same anvil."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    chain = Chain(w3, deploy_contracts(w3, admin_account()), admin_account())
    ids = []
    for n in range(3):
        ids.append(chain.register_node(node_owner(n).address, node_signer(n).address, "x:1"))
        chain.add_to_network(ids[-1])
    for p in payers:
        chain.fund_payer(p, DEPOSIT)
    domain = chain.report_domain()
    start = time.monotonic()
    for i, originator in enumerate(ids):
        fees: dict[str, int] = {payers[i % 2].address: 1_000 * (i + 1)}
        ordered, amounts = sorted_payers(fees)
        spec = PayerReportSpec(originator, 0, 100, 29_000_000, payers_hash(ordered, amounts),
                               tuple(ids))
        signatures = [(n, spec.sign(node_signer(k), domain)) for k, n in enumerate(ids[:2])]
        index = chain.submit_payer_report(spec, signatures)
        chain.settle_payer_report(originator, index, ordered, amounts)
    fee_flow(chain, ids, payers[0], start)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0, help="report interval, seconds")
    parser.add_argument("--envelopes", type=int, default=100, help="envelopes per node")
    parser.add_argument("--timeout", type=float, default=300.0)
    opts = parser.parse_args()
    print(f"machine: {describe()}")
    payers = [payer(0), payer(1)]
    logdir = Path(tempfile.mkdtemp(prefix="bench-payer-"))
    with PostgresProcess() as pg, AnvilProcess() as anvil:
        started = time.monotonic()
        cluster = ProcessCluster.deploy(anvil.rpc_url, pg, logdir)
        try:
            env = {"REFNODE_PAYER_REPORT_MANAGER": cluster.chain.addresses.payer_report_manager,
                   "REFNODE_REPORT_INTERVAL_S": str(opts.interval)}
            for _ in range(3):
                cluster.add_node(extra_env=env)
            for p in payers:
                cluster.chain.fund_payer(p, DEPOSIT)
            setup = time.monotonic() - started
            marks = lifecycle(cluster, payers, opts.envelopes, opts.timeout)
            inside = node_phases(cluster)
        finally:
            cluster.stop()
        bare = floor(anvil.rpc_url, payers)
    total = marks["payer withdrawal"]
    print(f"3 nodes, report interval {opts.interval:g} s, {opts.envelopes} envelopes per node; "
          f"cluster up in {setup:.1f} s (logs {logdir})")
    print(f"{'phase':18} {'s after last ack':>16}")
    for phase, at in marks.items():
        print(f"{phase:18} {at:16.2f}")
    for phase, took in inside.items():
        print(f"in the nodes, {phase}: {took * 1000:.0f} ms (slowest originator)")
    print(f"lifecycle {total:.2f} s; floor (bare chain work) {bare:.2f} s; ratio "
          f"{total / bare:.1f}; aim <= 180 s")


if __name__ == "__main__":
    main()
