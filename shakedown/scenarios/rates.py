"""Rates changed mid-run: settlement charges every envelope at the rates in force at its time.

    ChargedAtRates("rates-set@chain", pickup_s=5)

The change is a ``rates-set`` action; its history entry holds the new rates' start time. Each
envelope must carry the price of the rates in force at its originator time, except during
``pickup_s`` after the start, when a node may not have read the new rates yet (refnode reads the
RateRegistry every 2 s) and either price is fine. Each settled report must have charged each of
its payers exactly what that payer's envelopes in its range cost, as the PayerRegistry's
UsageSettled events of the settlement say.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from refnode.chain import Rates
from refnode.pricing import Pricing
from shakedown.chain.records import PayerReportRecord
from shakedown.scenarios.actions import chain_of
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.payer import run_record, short_of, wait_chain_covers
from shakedown.scenarios.view import RunView
from shakedown.verify.opened import Opened, open_all
from shakedown.verify.payer import settlement_charges

HONEST = Pricing()


@dataclass
class Judged:
    """What ``judge_charges`` found: problems, and envelopes counted by when they were made."""

    problems: list[str] = field(default_factory=list)
    before: int = 0        # settled envelopes made before the change
    during: int = 0        # made while nodes may still be reading the change
    after: int = 0         # made after it: must carry the new price
    reports: int = 0


def judge_charges(envelopes: dict[tuple[int, int], Opened], schedule: list[Rates],
                  reports: dict[tuple[int, int], PayerReportRecord],
                  charges: dict[tuple[int, int], dict[str, int]], change_start: float,
                  pickup_s: float) -> Judged:
    """Every envelope in a settled report priced as the rates in force say, and every payer
    charged its envelopes' fees by the settlement (pure)."""
    out = Judged()
    for (originator, index), report in sorted(reports.items()):
        if not report.is_settled:
            continue
        out.reports += 1
        owed: dict[str, int] = defaultdict(int)
        for seq in range(report.start_sequence_id + 1, report.end_sequence_id + 1):
            env = envelopes.get((originator, seq))
            if env is None:
                out.problems.append(f"originator {originator} report {index} covers envelope "
                                    f"{originator}:{seq}, which the database lacks")
                continue
            owed[env.payer.lower()] += env.fee
            t = env.originator_ns / 1e9
            late = change_start <= t < change_start + pickup_s
            out.before += t < change_start
            out.during += late
            out.after += t >= change_start + pickup_s
            prices = HONEST.acceptable(schedule, t, env.size, env.retention_days,
                                       pickup_s if late else 0.0)
            if (env.base_fee, env.congestion_fee) not in prices:
                base, congestion = sorted(prices)[-1]
                out.problems.append(
                    f"envelope {originator}:{seq}, {t - change_start:+.1f}s from the change, "
                    f"charges {env.base_fee} + {env.congestion_fee} picodollars; the rates in "
                    f"force price it {base} + {congestion}")
        got = charges.get((originator, index), {})
        for payer in sorted(owed.keys() | got.keys()):
            if got.get(payer, 0) != owed.get(payer, 0):
                out.problems.append(f"originator {originator} report {index} charged payer "
                                    f"{payer} {got.get(payer, 0)} picodollars; its envelopes "
                                    f"cost {owed.get(payer, 0)}")
    return out


def _envelopes(dsn: str) -> dict[tuple[int, int], Opened]:
    with psycopg.connect(dsn, connect_timeout=3) as conn, conn.cursor(binary=True) as cur:
        cur.execute("SELECT originator_envelope FROM gateway_envelopes_blob")
        blobs = [bytes(b) for (b,) in cur.fetchall()]
    return {(e.originator_node_id, e.sequence_id): e for e in open_all(blobs).values()}


@dataclass(frozen=True)
class ChargedAtRates(Expectation):
    """After the ``window`` rate change, settled reports charge every envelope at the rates in
    force at its time (``pickup_s`` of leeway after the start), and each payer exactly its
    envelopes' fees; at least one settled envelope on each side of the change."""

    window: str
    pickup_s: float = 5.0
    within_s: float = 60.0

    @property
    def name(self) -> str:
        return f"charged-at-rates({self.window})"

    def check(self, view: RunView) -> Check:
        done = next((e for e in view.events if e.get("f") == "action"
                     and e.get("window") == self.window and e.get("type") != "invoke"), None)
        if done is None or done.get("type") != "ok":
            why = done.get("error") if done else "not in the history"
            return self.failed(f"rate change {self.window} did not happen: {why}")
        wanted = view.acked_max(float("inf"))
        record = run_record(view)
        chain = chain_of(record)
        covered = wait_chain_covers(chain, wanted, self.within_s)
        if short_of(covered, wanted):
            return self.failed(f"not settled within {self.within_s:g}s: "
                               f"{short_of(covered, wanted)[0]}", settled=covered)
        node = sorted(view.nodes)[0]
        dsn = next(n["dsn"] for n in record["nodes"] if n["name"] == node)
        start = float(done["start_time"])
        judged = judge_charges(_envelopes(dsn), chain.rates(), chain.all_payer_reports(),
                               settlement_charges(chain), start, self.pickup_s)
        details = {"before": judged.before, "during": judged.during, "after": judged.after,
                   "settled_reports": judged.reports, "old": done.get("before"),
                   "new": done.get("rates"), "start_time": start}
        if judged.problems:
            return self.failed(f"{len(judged.problems)} wrong charges: {judged.problems[0]}",
                               problems=judged.problems[:20], **details)
        if not judged.before or not judged.after:
            return self.failed(f"settled envelopes: {judged.before} before the change, "
                               f"{judged.after} after it; the check needs both", **details)
        return self.passed(f"{judged.before} envelopes before the change and {judged.after} "
                           f"after it ({judged.during} while nodes read it) charged at the "
                           f"rates in force, in {judged.reports} settled reports", **details)
