"""Liveness under restarts: the network keeps acknowledging, and every node (or every node,
when a shared server restarted) serves and catches up again after each fault window.

    Liveness(max_stall_s=5)                          # never 5 s without an acknowledgement
    Recovers("db-stop@db", within_s=20)              # after the clear: acks and catch-up
    EachRecovers(("kill", "restart"), within_s=30)   # the same for every such window
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from shakedown.scenarios.expectations import Check, Expectation, _window_or_fail
from shakedown.scenarios.view import RunView, Window, behind


def recovery_problems(view: RunView, w: Window, within_s: float) -> tuple[list[str], float]:
    """After ``w`` clears, each node it hit (its target, or every node when the target is not
    a node) acknowledges a publish made to it, and holds everything acknowledged before the
    clear, within ``within_s``. Returns the problems and the slowest recovery seen."""
    end = w.end if w.end is not None else view.heal
    nodes = [n for n in w.target.split(",") if n in view.nodes] or sorted(view.nodes)
    problems, slowest = [], 0.0
    for node in nodes:
        after = [c for c in view.calls if c.target == node and c.invoked >= end]
        acked = next((c for c in after if c.outcome == "ok"), None)
        if after and (acked is None or acked.completed - end > within_s):
            seen = f"first ack {acked.completed - end:.1f}s after" if acked else \
                f"none of {len(after)} calls acknowledged after"
            problems.append(f"{node} did not acknowledge within {within_s:g}s of clearing "
                            f"{w.label} ({seen})")
            continue
        wanted = view.acked_max(end)
        hit = view.first_caught_up(wanted, end, [node])
        if hit is None or hit.t - end > within_s:
            last = view.sample_at(end + within_s)
            problems.append(f"{node} not caught up within {within_s:g}s of clearing {w.label}: "
                            f"behind {behind(last.clock(node) if last else None, wanted)}")
            continue
        slowest = max(slowest, hit.t - end, (acked.completed - end) if acked else 0.0)
    return problems, slowest


@dataclass(frozen=True)
class Recovers(Expectation):
    """After ``window`` clears, the nodes it hit acknowledge publishes again and catch up
    within ``within_s``: they reconnected by themselves."""

    window: str
    within_s: float = 20.0

    @property
    def name(self) -> str:
        return f"recovers({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        problems, slowest = recovery_problems(view, w, self.within_s)
        if problems:
            return self.failed("; ".join(problems), problems=problems)
        return self.passed(f"serving and caught up {slowest:.1f}s after {self.window} cleared",
                           recovered_after_s=round(slowest, 3))


@dataclass(frozen=True)
class EachRecovers(Expectation):
    """Every fault window of ``kinds`` (however many the seed drew) is followed by its node
    acknowledging and catching up within ``within_s``; at least ``at_least`` windows."""

    kinds: tuple[str, ...]
    within_s: float = 30.0
    at_least: int = 1

    @property
    def name(self) -> str:
        return f"each-recovers({','.join(self.kinds)})"

    def check(self, view: RunView) -> Check:
        windows = [w for w in view.windows.values() if w.kind in self.kinds]
        failed = [w.label for w in windows if w.error]
        applied = [w for w in windows if not w.error]
        if len(applied) < self.at_least:
            return self.failed(f"only {len(applied)} {'/'.join(self.kinds)} windows applied, "
                               f"wanted >= {self.at_least}", failed=failed)
        problems, slowest = [], 0.0
        for w in sorted(applied, key=lambda w: w.start):
            found, took = recovery_problems(view, w, self.within_s)
            problems += found
            slowest = max(slowest, took)
        view.metrics["slowest_recovery_s"] = round(slowest, 3)
        details = {"windows": len(applied), "apply_failed": failed, "problems": problems[:20]}
        if problems:
            return self.failed(f"{len(problems)} of {len(applied)} windows not recovered from: "
                               f"{problems[0]}", **details)
        return self.passed(f"recovered from all {len(applied)} windows; slowest {slowest:.1f}s",
                           **details)


@dataclass(frozen=True)
class Liveness(Expectation):
    """The network never went ``max_stall_s`` without acknowledging a publish, from the
    workload's start to its end (while faults come and go, some node always accepts)."""

    max_stall_s: float = 5.0

    @property
    def name(self) -> str:
        return "liveness"

    def check(self, view: RunView) -> Check:
        acks = sorted(c.completed for c in view.calls if c.outcome == "ok")
        if not acks:
            return self.failed("nothing was acknowledged")
        edges = [0.0, *acks, view.workload_end]
        gap, at = max((b - a, a) for a, b in itertools.pairwise(edges))
        view.metrics["longest_stall_s"] = round(gap, 3)
        details = {"acked_calls": len(acks), "longest_stall_s": round(gap, 3),
                   "stall_from_s": round(at, 3)}
        if gap > self.max_stall_s:
            return self.failed(f"no publish acknowledged for {gap:.1f}s from {at:.1f}s "
                               f"(wanted <= {self.max_stall_s:g}s)", **details)
        return self.passed(f"{len(acks)} acknowledged calls; the longest stretch without one "
                           f"was {gap:.1f}s", **details)
