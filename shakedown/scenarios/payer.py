"""Payer expectations: what a scenario about money promises, read from the chain and the DBs.

    ReportsSettled(within_s=60)        # every acknowledged envelope is inside a settled report
    SettledMatchesChain(within_s=60)   # every DB's submitted/settled rows are the chain's
    NothingSettledDuring(("stop@node-300", "stop@node-400"))   # no settlement while both held
    VerifyFlagged("verify@stuck", ("test_no_report_stuck[node-100]",), "pending submission")
    MoneyConserved()                   # balances, token supply, fee distribution add up
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from shakedown.chain.ops import Chain
from shakedown.deploy.record import load_record
from shakedown.errors import TimeoutExpired
from shakedown.model import load_inventory
from shakedown.scenarios.actions import chain_of
from shakedown.scenarios.expectations import Check, Expectation, _window_or_fail
from shakedown.scenarios.view import RunView, Sample
from shakedown.verify import payer as books
from shakedown.waiting import wait_for


def run_record(view: RunView) -> dict[str, Any]:
    """The run's deployment record, found through its inventory."""
    testnet = load_inventory(view.inventory)[0]
    return load_record(testnet.record_path) or {}


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


def _first(problems: list[str]) -> str:
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


def wait_chain_covers(chain: Chain, wanted: dict[int, int], within_s: float) -> dict[int, int]:
    """Wait until settled reports on-chain cover ``wanted``; the coverage last seen."""
    try:
        return wait_for(lambda: _settled_on_chain(chain, sorted(wanted)),
                        lambda s: all(s.get(o, 0) >= q for o, q in wanted.items()),
                        timeout=within_s, interval=1.0, what="settled reports cover every ack")
    except TimeoutExpired:
        return _settled_on_chain(chain, sorted(wanted))


def short_of(covered: dict[int, int], wanted: dict[int, int]) -> list[str]:
    return [f"originator {o} settled up to {covered.get(o, 0)} of {q}"
            for o, q in sorted(wanted.items()) if covered.get(o, 0) < q]


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
        wanted, chain, dsns = _settlement_view(view)
        if not wanted:
            return self.failed("nothing was acknowledged, so nothing could be settled")

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
            short = [f"{where}: {line}" for where in seen
                     for line in short_of(seen[where], wanted)]
            return self.failed(f"not settled within {self.within_s:g}s: {_first(short)}",
                               acked_max=wanted, settled=seen)
        return self.passed(f"every acknowledged envelope of {len(wanted)} originators settled "
                           f"on-chain and mirrored in {len(dsns)} databases",
                           acked_max=wanted, settled=seen)


@dataclass(frozen=True)
class SettledMatchesChain(Expectation):
    """Within ``within_s``, every acknowledged envelope is inside a report settled on-chain,
    and every canonical node's database holds every submitted and settled report exactly as
    the PayerReportManager does (originator, sequence range, end minute, payers hash, node
    ids, settled flag), and nothing the chain does not."""

    within_s: float = 60.0

    @property
    def name(self) -> str:
        return "settled-matches-chain"

    def check(self, view: RunView) -> Check:
        wanted, chain, dsns = _settlement_view(view)
        if not wanted:
            return self.failed("nothing was acknowledged, so nothing could be settled")

        def state() -> dict[str, list[str]]:
            on_chain = chain.all_payer_reports()
            covered = {o: max((r.end_sequence_id for (oo, _), r in on_chain.items()
                               if oo == o and r.is_settled), default=0) for o in wanted}
            out = {"chain": short_of(covered, wanted)}
            for name, dsn in dsns.items():
                with psycopg.connect(dsn, connect_timeout=3) as conn:
                    rows = books.read_reports(conn)
                out[name] = books.settled_problems(rows, on_chain)
            return out

        try:
            seen = wait_for(state, lambda s: not any(s.values()), timeout=self.within_s,
                            interval=1.0, what="every database matches the chain's reports")
        except TimeoutExpired:
            seen = state()
            problems = [f"{where}: {p}" for where, found in seen.items() for p in found]
            return self.failed(f"after {self.within_s:g}s: {_first(problems)}",
                               problems=problems[:20])
        reports = sum(1 for r in chain.all_payer_reports().values() if r.is_settled)
        return self.passed(f"{reports} settled reports cover every acknowledged envelope; "
                           f"{len(dsns)} databases hold them as the chain does",
                           acked_max=wanted, settled_reports=reports)


def _settlement_view(view: RunView) -> tuple[dict[int, int], Any, dict[str, str]]:
    """What settlement must cover (highest acknowledged sequence per originator), the chain,
    and the databases of the run's canonical nodes by name."""
    wanted = view.acked_max(float("inf"))
    record = run_record(view)
    dsns = {n["name"]: n["dsn"] for n in record["nodes"] if n["name"] in view.nodes}
    return wanted, chain_of(record), dsns


def settled_inside(settlements: list[tuple[int, int, int]], samples: list[Sample],
                   start: float, end: float) -> list[str]:
    """The settlements (originator, index, block) certainly mined in (start, end], placed in
    scenario time by the chain head each sample saw (pure)."""
    found = []
    for originator, index, block in settlements:
        before = [s.t for s in samples if s.block is not None and s.block < block]
        after = [s.t for s in samples if s.block is not None and s.block >= block]
        if before and after and max(before) >= start and min(after) <= end:
            found.append(f"originator {originator} report index {index} settled between "
                         f"{max(before):.1f}s and {min(after):.1f}s (block {block})")
    return found


def settled_by(settlements: list[tuple[int, int, int]], samples: list[Sample], t: float) -> int:
    """How many settlements a sample taken by ``t`` already saw mined (pure)."""
    seen = max((s.block for s in samples if s.t <= t and s.block is not None), default=-1)
    return sum(1 for _, _, block in settlements if block <= seen)


@dataclass(frozen=True)
class NothingSettledDuring(Expectation):
    """While every one of ``windows`` holds (from ``grace_s`` after the last began to the
    first clear), no payer report is settled on-chain, though envelopes were acknowledged;
    and some report settled before the first window began (settlement did work)."""

    windows: tuple[str, ...]
    grace_s: float = 2.0

    @property
    def name(self) -> str:
        return f"nothing-settled-during({','.join(self.windows)})"

    def check(self, view: RunView) -> Check:
        starts, ends = [], []
        for label in self.windows:
            w, bad = _window_or_fail(self, view, label)
            if bad:
                return bad
            assert w is not None
            starts.append(w.start)
            ends.append(w.end if w.end is not None else view.heal)
        start, end = max(starts) + self.grace_s, min(ends)
        acked = sum(view.acks_between(start, end).values())
        placed = [s for s in view.samples_between(start, end) if s.block is not None]
        details = {"from_s": round(start, 3), "to_s": round(end, 3), "acked_during": acked}
        if not acked:
            return self.failed("nothing was acknowledged while quorum was lost: the check "
                               "would be vacuous", **details)
        if not placed:
            return self.failed("no sample saw the chain's head in the window", **details)
        manager = chain_of(run_record(view)).contracts.payer_report_manager
        settlements = [(int(e["args"]["originatorNodeId"]), int(e["args"]["payerReportIndex"]),
                        int(e["blockNumber"]))
                       for e in manager.events.PayerReportSettled().get_logs(from_block=0)]
        inside = settled_inside(settlements, view.samples, start, end)
        details["settled_before"] = before = settled_by(settlements, view.samples, min(starts))
        if not before:
            return self.failed("no report settled before the windows either: nothing to tell "
                               "lost quorum from a pipeline that never settles", **details)
        if inside:
            return self.failed(f"settled while quorum was lost ({start:.1f}s-{end:.1f}s): "
                               f"{_first(inside)}", settled=inside, **details)
        return self.passed(f"no report settled from {start:.1f}s to {end:.1f}s while {acked} "
                           f"envelopes were acknowledged ({before} settled before, "
                           f"{len(settlements)} in all)", **details)


@dataclass(frozen=True)
class VerifyFlagged(Expectation):
    """The ``verify`` action ``window`` flagged every one of ``checks``, each message naming
    ``fragment``: verify sees the state the scenario created."""

    window: str
    checks: tuple[str, ...]
    fragment: str = ""

    @property
    def name(self) -> str:
        return f"verify-flagged({self.window})"

    def check(self, view: RunView) -> Check:
        done = next((e for e in view.events if e.get("f") == "action"
                     and e.get("window") == self.window and e.get("type") != "invoke"), None)
        if done is None or done.get("type") != "ok":
            why = done.get("error") if done else "not in the history"
            return self.failed(f"verify action {self.window} did not run: {why}")
        flagged = {line.split(": ", 1)[0]: line for line in done.get("failing", [])}
        missed = [c for c in self.checks if self.fragment not in flagged.get(c, "")]
        details = {"failing": done.get("failing", []), "tests": done.get("tests")}
        if done.get("error"):
            return self.failed(f"verify action {self.window}: {done['error']}", **details)
        if missed:
            return self.failed(f"{self.window} did not flag {', '.join(missed)} with "
                               f"{self.fragment!r}; it flagged {sorted(flagged) or 'nothing'}",
                               **details)
        return self.passed(f"{self.window} flagged {'; '.join(flagged[c] for c in self.checks)}"
                           [:400], **details)


@dataclass(frozen=True)
class MoneyConserved(Expectation):
    """The chain's books balance: payer balances, FeeToken supply, fee distribution (the
    verify suite's own checks, read once after the run)."""

    @property
    def name(self) -> str:
        return "money-conserved"

    def check(self, view: RunView) -> Check:
        chain = chain_of(run_record(view))
        problems = (books.check_balances(chain) + books.check_token_supply(chain)
                    + books.check_distribution(chain))
        if problems:
            return self.failed(_first(problems), problems=problems[:20])
        totals = chain.payer_registry_totals()
        return self.passed(f"deposited {totals['deposited']}, settled {totals['settled']} "
                           f"picodollars; balances, token supply and fee distribution add up",
                           **totals)
