"""Expectations of the adversarial scenarios: honest nodes refuse a rogue, and verify says so.

    RogueRefused("node-300", ("equivocation", "gap", "stale"))  # evidence kept by every peer
    ValidPrefixOnly("node-300")   # peers hold only what the rogue really stored, gap-free
    VerifyFinds((("test_no_misbehaviour[node-100]", "node 300"), ...))  # exactly these flags
    LiarRefused("node-300")       # its lying payer reports rejected, none on the chain
    HonestReportsSettled("node-300")  # everyone else's envelopes still settle

Each reads the run's databases directly (through the deployment record), never a node's API.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

from shakedown.errors import TimeoutExpired
from shakedown.scenarios.actions import chain_of
from shakedown.scenarios.expectations import SKIP, Check, Expectation
from shakedown.scenarios.payer import run_record
from shakedown.scenarios.verify_suite import VERIFY_DIR, VerifySuite, run_verify
from shakedown.scenarios.view import RunView
from shakedown.verify.misbehaviour import read_refusals
from shakedown.verify.report_audit import HeldReport, disagreement, read_held_reports, read_priced
from shakedown.waiting import wait_for


def node_dsns(view: RunView) -> dict[str, str]:
    """The run's canonical nodes' database DSNs by node name."""
    return {n["name"]: n["dsn"] for n in run_record(view)["nodes"] if n["name"] in view.nodes}


def _first(problems: list[str]) -> str:
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


@dataclass(frozen=True)
class RogueRefused(Expectation):
    """Every other canonical node refused ``rogue``'s streams for each of ``kinds`` and kept
    the evidence; and no node accused anyone else (an honest peer is never refused)."""

    rogue: str
    kinds: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"rogue-refused({self.rogue})"

    def check(self, view: RunView) -> Check:
        rogue_id = view.nodes.get(self.rogue)
        if rogue_id is None:
            return self.failed(f"{self.rogue} is not a canonical node of this run")
        problems, seen = [], {}
        for name, dsn in sorted(node_dsns(view).items()):
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                refusals = read_refusals(conn)
            kinds = Counter(r.kind for r in refusals if r.offender == rogue_id)
            seen[name] = dict(kinds)
            others = sorted({f"node {r.offender} ({r.kind} at {r.sequence_id})"
                             for r in refusals if r.offender != rogue_id})
            if others:
                problems.append(f"{name} accused {', '.join(others[:3])}: only {self.rogue} "
                                "misbehaves in this run")
            missing = [k for k in self.kinds if not kinds.get(k)]
            if name != self.rogue and missing:
                held = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "nothing"
                problems.append(f"{name} never refused {self.rogue}'s {', '.join(missing)} "
                                f"(it refused: {held})")
        if problems:
            return self.failed(_first(problems), refused=seen)
        honest = [n for n in seen if n != self.rogue]
        return self.passed(f"{', '.join(honest)} refused {self.rogue}'s {', '.join(self.kinds)} "
                           f"with evidence; nobody else was accused", refused=seen)


@dataclass(frozen=True)
class ValidPrefixOnly(Expectation):
    """Every other canonical node holds of ``rogue``'s envelopes exactly what the rogue itself
    stored, byte for byte, from sequence 1 without a gap, and everything it acknowledged:
    none of the forgeries it served."""

    rogue: str

    @property
    def name(self) -> str:
        return f"valid-prefix-only({self.rogue})"

    def check(self, view: RunView) -> Check:
        rogue_id = view.nodes.get(self.rogue)
        own_store = view.stores.get(self.rogue)
        if rogue_id is None or own_store is None:
            return self.failed(f"{self.rogue}'s own store was not read")
        own = {s: d for (o, s), (d, _) in own_store.items() if o == rogue_id}
        acked = view.acked_max(float("inf")).get(rogue_id, 0)
        if not acked:
            return self.failed(f"{self.rogue} acknowledged nothing: the check would be vacuous")
        problems, held_to = [], {}
        for name, store in sorted(view.stores.items()):
            if name == self.rogue:
                continue
            held = {s: d for (o, s), (d, _) in store.items() if o == rogue_id}
            held_to[name] = max(held, default=0)
            forged = sorted(s for s in held if s not in own)
            differ = sorted(s for s in held if s in own and held[s] != own[s])
            holes = sorted(set(range(1, max(held, default=0) + 1)) - set(held))
            if forged:
                problems.append(f"{name} holds {rogue_id}:{forged[0]}, which {self.rogue} never "
                                f"stored (a forgery; {len(forged)} in all)")
            if differ:
                problems.append(f"{name}'s copy of {rogue_id}:{differ[0]} is not the one "
                                f"{self.rogue} stored ({len(differ)} differ)")
            if holes:
                problems.append(f"{name} lacks {rogue_id}:{holes[0]} below its highest "
                                f"{max(held)} (a gap; {len(holes)} missing)")
            if max(held, default=0) < acked:
                problems.append(f"{name} holds {self.rogue}'s envelopes only up to "
                                f"{max(held, default=0)} of the {acked} acknowledged")
        details = {"rogue_stored": max(own, default=0), "acked": acked, "held": held_to}
        if problems:
            return self.failed(_first(problems), **details)
        return self.passed(f"{', '.join(held_to)} hold exactly {self.rogue}'s {len(own)} stored "
                           f"envelopes (1..{max(own)}), none of its forgeries", **details)


@dataclass(frozen=True)
class VerifyFinds(VerifySuite):
    """The verify suite run after the scenario flags exactly ``findings``: each named check
    fails with its first line holding the fragment, and every other check passes. What the
    adversary did is what verify names, and nothing else broke. Replaces the runner's
    plain verify-suite check (same name).

        VerifyFinds((("test_no_misbehaviour[node-100]", "node 300"),))
    """

    findings: tuple[tuple[str, str], ...] = ()

    def check(self, view: RunView) -> Check:
        if not view.verify:
            return Check(self.name, SKIP, "skipped (--no-verify)")
        if not (VERIFY_DIR / "conftest.py").is_file():
            return self.failed(f"the verify suite is missing: no {VERIFY_DIR}/conftest.py")
        details: dict[str, Any] = run_verify(view.inventory, view.run_dir, "verify", [],
                                             self.settle_timeout_s, self.timeout_s)
        if "error" in details:
            return self.failed(details["error"], **details)
        missed, extra = judge_findings(details["failing"], self.findings)
        if missed or extra:
            parts = []
            if missed:
                parts.append(f"did not flag {'; '.join(missed)}")
            if extra:
                parts.append(f"also failed: {'; '.join(extra[:3])}"
                             + (f" (+{len(extra) - 3} more)" if len(extra) > 3 else ""))
            return self.failed(f"verify ({details['tests']} checks) {' and '.join(parts)}",
                               **details)
        flagged = {line.split(": ", 1)[0]: line for line in details["failing"]}
        wanted = dict(self.findings)
        shown = "; ".join(flagged[c] for c in wanted)
        return self.passed(f"{details['tests']} verify checks: exactly the {len(wanted)} "
                           f"expected findings ({shown[:300]})", **details)


def judge_findings(failing: list[str], findings: tuple[tuple[str, str], ...]
                   ) -> tuple[list[str], list[str]]:
    """(expected findings verify missed, failures nobody expected), from verify's failing
    lines (``test_id: first line``). Pure.

        judge_findings(["t[a]: node 300 lied"], (("t[a]", "node 300"),)) == ([], [])
    """
    flagged = {line.split(": ", 1)[0]: line for line in failing}
    wanted = dict(findings)
    missed = [f"{c} (wanted {frag!r})" for c, frag in findings if frag not in flagged.get(c, "")]
    extra = [line for c, line in flagged.items() if c not in wanted]
    return missed, extra


@dataclass(frozen=True)
class LiarRefused(Expectation):
    """``liar``'s payer reports never reach the chain: every other canonical node rejected at
    least ``at_least`` of them (one per lie) and attested none that disagrees with its own
    envelopes, the liar's own database shows them never submitted, and the chain holds no
    report of the liar that disagrees with the envelopes."""

    liar: str
    at_least: int = 3

    @property
    def name(self) -> str:
        return f"liar-refused({self.liar})"

    def check(self, view: RunView) -> Check:
        liar_id = view.nodes.get(self.liar)
        if liar_id is None:
            return self.failed(f"{self.liar} is not a canonical node of this run")
        record = run_record(view)
        problems: list[str] = []
        rejected: dict[str, int] = {}
        on_chain = chain_of(record).payer_reports(liar_id)
        for name, dsn in sorted(node_dsns(view).items()):
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                held = [r for r in read_held_reports(conn) if r.originator == liar_id]
                top = max([r.end for r in held] + [r.end_sequence_id for r in on_chain] + [0])
                priced = read_priced(conn, liar_id, top)
            if name == self.liar:
                sent = [r for r in held if r.submission in (1, 2)]
                if sent:
                    problems.append(f"{self.liar} got its report ({sent[0].start}, "
                                    f"{sent[0].end}] {sent[0].status}")
                continue
            rejected[name] = sum(1 for r in held if r.attestation == 2)
            signed = [r for r in held if r.attestation == 1 and disagreement(r, priced)]
            if signed:
                problems.append(f"{name} attested {self.liar}'s report ({signed[0].start}, "
                                f"{signed[0].end}]: {disagreement(signed[0], priced)}")
            if rejected[name] < self.at_least:
                problems.append(f"{name} rejected only {rejected[name]} of {self.liar}'s "
                                f"reports (wanted >= {self.at_least}, one per lie)")
            for r in on_chain:
                spec = HeldReport(liar_id, r.start_sequence_id, r.end_sequence_id,
                                  r.end_minute_since_epoch, r.payers_hash, 1, 0)
                why = disagreement(spec, priced)
                if why:
                    problems.append(f"the chain holds {self.liar}'s report ({spec.start}, "
                                    f"{spec.end}] ({name}'s envelopes: {why})")
                    break
        details = {"rejected_by": rejected, "on_chain": len(on_chain)}
        if problems:
            return self.failed(_first(problems), **details)
        return self.passed(f"{self.liar}'s reports rejected by "
                           + ", ".join(f"{n} ({k})" for n, k in rejected.items())
                           + f"; {len(on_chain)} of its reports on-chain, none disagreeing",
                           **details)


@dataclass(frozen=True)
class HonestReportsSettled(Expectation):
    """Within ``within_s``, every acknowledged envelope of every originator but ``liar`` lies
    inside a report settled on-chain, and every canonical node's database shows it settled."""

    liar: str
    within_s: float = 60.0

    @property
    def name(self) -> str:
        return f"honest-reports-settled(not {self.liar})"

    def check(self, view: RunView) -> Check:
        liar_id = view.nodes.get(self.liar)
        wanted = {o: s for o, s in view.acked_max(float("inf")).items() if o != liar_id}
        if not wanted:
            return self.failed("no honest originator acknowledged anything")
        chain, dsns = chain_of(run_record(view)), node_dsns(view)

        def state() -> dict[str, dict[int, int]]:
            seen = {"chain": {o: max((r.end_sequence_id for r in chain.payer_reports(o)
                                      if r.is_settled), default=0) for o in wanted}}
            for name, dsn in dsns.items():
                with psycopg.connect(dsn, connect_timeout=3) as conn:
                    rows = conn.execute("SELECT originator_node_id, max(end_sequence_id) "
                                        "FROM payer_reports WHERE submission_status = 2 "
                                        "GROUP BY 1").fetchall()
                seen[name] = {int(o): int(e) for o, e in rows}
            return seen

        def short(seen: dict[str, dict[int, int]]) -> list[str]:
            return [f"{where}: originator {o} settled up to {got.get(o, 0)} of {q}"
                    for where, got in seen.items() for o, q in sorted(wanted.items())
                    if got.get(o, 0) < q]

        try:
            seen = wait_for(state, lambda s: not short(s), timeout=self.within_s, interval=1.0,
                            what="honest reports settled")
        except TimeoutExpired:
            seen = state()
            return self.failed(f"not settled within {self.within_s:g}s: {_first(short(seen))}",
                               acked_max=wanted, settled=seen)
        return self.passed(f"every acknowledged envelope of {sorted(wanted)} settled on-chain "
                           f"and mirrored in {len(dsns)} databases", acked_max=wanted)
