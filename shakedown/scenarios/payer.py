"""Payer expectations: what a scenario about money promises, read from the chain and the DBs.

    ReportsSettled(within_s=60)   # every acknowledged envelope is inside a settled report
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.deploy.record import load_record
from shakedown.errors import TimeoutExpired
from shakedown.keys import admin_account
from shakedown.model import load_inventory
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.view import RunView
from shakedown.waiting import wait_for


def _settled_on_chain(chain: Chain, originators: list[int]) -> dict[int, int]:
    """Per originator, the highest sequence id covered by its settled reports on-chain."""
    covered = {}
    for o in originators:
        ends = [r.end_sequence_id for r in chain.payer_reports(o) if r.is_settled]
        covered[o] = max(ends, default=0)
    return covered


def _settled_in_db(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        rows = conn.execute("SELECT originator_node_id, max(end_sequence_id) FROM payer_reports "
                            "WHERE submission_status = 2 GROUP BY 1").fetchall()
    return {int(o): int(e) for o, e in rows}


@dataclass(frozen=True)
class ReportsSettled(Expectation):
    """Within ``within_s`` of the checks starting, every acknowledged envelope of every
    originator lies inside a report settled on-chain, and every canonical node's database
    shows those reports settled (mirrored from the chain)."""

    within_s: float = 60.0

    @property
    def name(self) -> str:
        return "reports-settled"

    def check(self, view: RunView) -> Check:
        wanted = view.acked_max(float("inf"))
        if not wanted:
            return self.failed("nothing was acknowledged, so nothing could be settled")
        testnet = load_inventory(view.inventory)[0]
        record = load_record(testnet.record_path) or {}
        chain = Chain.connect(record["chain"]["rpc"],
                              ContractAddresses.from_dict(record["contracts"]), admin_account())
        dsns = {n["name"]: n["dsn"] for n in record["nodes"] if n["name"] in view.nodes}

        def state() -> dict[str, Any]:
            return {"chain": _settled_on_chain(chain, sorted(wanted)),
                    **{name: _settled_in_db(dsn) for name, dsn in dsns.items()}}

        def done(s: dict[str, Any]) -> bool:
            return all(s[where].get(o, 0) >= seq for where in s for o, seq in wanted.items())

        try:
            seen = wait_for(state, done, timeout=self.within_s, interval=1.0,
                            what="settled reports cover every acknowledged envelope")
        except TimeoutExpired:
            seen = state()
            short = [f"{where}: originator {o} settled up to {seen[where].get(o, 0)} of {seq}"
                     for where in seen for o, seq in sorted(wanted.items())
                     if seen[where].get(o, 0) < seq]
            return self.failed(f"not settled within {self.within_s:g}s: {short[0]}"
                               + (f" (and {len(short) - 1} more)" if len(short) > 1 else ""),
                               acked_max=wanted, settled=seen)
        return self.passed(f"every acknowledged envelope of {len(wanted)} originators settled "
                           f"on-chain and mirrored in {len(dsns)} databases",
                           acked_max=wanted, settled=seen)
