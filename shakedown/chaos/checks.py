"""Checkpoints and their verdicts: poll snapshots against one prediction to a settle deadline,
dump what was seen, and turn every checkpoint's mismatches into one check per property.

A checkpoint polls until every liveness property holds, else to its deadline, and judges
liveness on the last snapshot (a failure reports the last value seen); a safety property
that broke on any snapshot is reported as first seen. Each checkpoint leaves
``snapshots/NN-after-event-E.json`` (prediction, snapshot, mismatches) in the run directory.

    cp = poll_checkpoint(k=2, event=16, prediction=p, take=lambda: snap(), previous={}, ...)
    cp.mismatches
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shakedown.chaos.judge import LIVENESS, PROPERTIES, Mismatch, judge, settled
from shakedown.chaos.model import Prediction
from shakedown.chaos.observed import NodeView, Snapshot
from shakedown.errors import TimeoutExpired
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.view import RunView
from shakedown.waiting import wait_for

POLL_S = 0.5


@dataclass(frozen=True)
class Checkpoint:
    """One comparison of the model with what was observed."""

    k: int
    event: int                 # the last event before it (0: none ran)
    final: bool
    mismatches: tuple[Mismatch, ...]
    waited_s: float
    polls: int
    dump: str                  # the snapshot file, relative to the run directory

    @property
    def label(self) -> str:
        what = "the final checkpoint" if self.final else f"checkpoint {self.k}"
        return f"{what} (after event {self.event})"

    def messages(self) -> list[str]:
        return [m.message(self.event, self.label) for m in self.mismatches]


def poll_checkpoint(*, k: int, event: int, final: bool, prediction: Prediction,
                    take: Callable[[], Snapshot], previous: Mapping[str, NodeView],
                    settle_s: float, run_dir: Path, stop_on: str = ""
                    ) -> tuple[Checkpoint, Snapshot]:
    """Snapshot until the prediction's liveness holds or ``settle_s`` passes; judge the last.
    ``stop_on`` names a safety property whose first violation ends the polling (a shrink
    candidate needs no more)."""
    seen: list[tuple[Snapshot, list[Mismatch]]] = []   # the last one only
    broken: dict[tuple[str, str, str], Mismatch] = {}   # safety violations, first seen
    polls = 0

    def probe() -> list[Mismatch]:
        nonlocal polls
        snap = take()
        found = judge(prediction, snap, previous)
        for m in found:
            if m.property not in LIVENESS:
                broken.setdefault((m.property, m.node, m.predicted), m)
        seen[:] = [(snap, found)]
        polls += 1
        return found

    began = time.monotonic()
    try:
        wait_for(probe, lambda found: settled(found) or any(
                     m.property == stop_on and stop_on not in LIVENESS for m in found),
                 timeout=settle_s, interval=POLL_S, what=f"checkpoint {k}")
    except TimeoutExpired:
        pass  # judged on the last snapshot below, which the messages show
    if not seen:  # every probe raised: take one more, letting its error through
        probe()
    snap, last = seen[-1]
    found = [*[m for m in last if m.property in LIVENESS], *broken.values()]
    found.sort(key=lambda m: PROPERTIES.index(m.property))
    name = f"snapshots/{k:02d}-{'final' if final else f'after-event-{event}'}.json"
    cp = Checkpoint(k, event, final, tuple(found), round(time.monotonic() - began, 3),
                    polls, name)
    path = run_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "checkpoint": k, "after_event": event, "final": final, "waited_s": cp.waited_s,
        "polls": cp.polls, "mismatches": [m.to_json() for m in found],
        "messages": cp.messages(), "prediction": prediction.to_json(),
        "snapshot": snap.to_json()}, indent=1, sort_keys=True) + "\n")
    return cp, snap


@dataclass(frozen=True)
class ModelProperty(Expectation):
    """One model property over every checkpoint of a chaos run (the final one taken here)."""

    prop: str
    results: Callable[[], list[Checkpoint]] = field(compare=False)

    @property
    def name(self) -> str:
        return f"chaos-{self.prop}"

    def check(self, view: RunView) -> Check:
        done = self.results()
        bad = [(cp, m) for cp in done for m in cp.mismatches if m.property == self.prop]
        where = ", ".join(str(cp.event) if not cp.final else "the final heal" for cp in done)
        if not bad:
            return self.passed(f"held at {len(done)} checkpoints (after events {where})",
                               checkpoints=len(done))
        first_cp, first = bad[0]
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return self.failed(first.message(first_cp.event, first_cp.label) + more,
                           mismatches=[{"checkpoint": cp.k, "after_event": cp.event,
                                        "final": cp.final, **m.to_json()}
                                       for cp, m in bad[:50]],
                           first_event=first_cp.event, snapshot=first_cp.dump)


@dataclass(frozen=True)
class ScheduleRan(Expectation):
    """Every scheduled event ran as written (or the run says why it stopped early)."""

    summary: Callable[[], dict[str, Any]] = field(compare=False)

    @property
    def name(self) -> str:
        return "chaos-schedule"

    def check(self, view: RunView) -> Check:
        s = self.summary()
        tail = f"; stopped early: {s['cut_short']}" if s["cut_short"] else ""
        if s["failed"]:
            shown = "; ".join(s["failed"][:3])
            return self.failed(f"{len(s['failed'])} of {s['ran']} events could not run: "
                               f"{shown}{tail}", **s)
        return self.passed(f"{s['ran']} of {s['scheduled']} events ran ({s['unsure']} with "
                           f"unsure outcomes){tail}", **s)


def property_checks(results: Callable[[], list[Checkpoint]]) -> list[Expectation]:
    return [ModelProperty(p, results) for p in PROPERTIES]
