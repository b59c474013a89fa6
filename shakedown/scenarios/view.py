"""What the checks see of a run: the history, read once into windows, samples and publishes.

Times here are seconds since the workload started (``scenario time``), the same clock as the
scenario's schedule; ``RunView.from_history`` converts from the history's clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shakedown.scenarios.api import Scenario
from shakedown.scenarios.checker import Store


@dataclass(frozen=True)
class Window:
    """A fault window: from the apply's completion to the clear's completion."""

    label: str
    kind: str
    target: str
    invoked: float          # apply invoked
    start: float            # apply completed: the fault is in force from here
    end: float | None       # clear completed (None: never cleared)
    error: str = ""         # the apply failed: no window


@dataclass(frozen=True)
class Sample:
    t: float
    nodes: dict[str, dict[str, Any]]
    block: int | None = None  # the chain's block number when sampled

    def clock(self, node: str) -> dict[int, int] | None:
        got = self.nodes.get(node) or {}
        if "clock" not in got:
            return None
        return {int(k): int(v) for k, v in got["clock"].items()}


@dataclass(frozen=True)
class Call:
    """One publish call: when it was invoked and completed, where it went, what came back."""

    label: str
    target: str
    invoked: float
    completed: float
    outcome: str             # ok | fail | info
    acks: tuple[tuple[int, int], ...] = ()   # (originator, sequence id)
    error: str = ""
    n: int = 0


@dataclass
class RunView:
    scenario: Scenario
    events: list[dict[str, Any]]
    t0: float                                     # history time of the workload start
    workload_end: float = 0.0
    heal: float = 0.0
    windows: dict[str, Window] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)      # canonical node name -> id
    stores: dict[str, Store] = field(default_factory=dict)   # final stores
    run_dir: Path = Path()
    inventory: Path = Path()
    verify: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_history(cls, scenario: Scenario, events: list[dict[str, Any]],
                     **kwargs: Any) -> RunView:
        t0 = next((e["t"] for e in events if e.get("f") == "phase"
                   and e.get("phase") == "workload" and e.get("state") == "start"), 0.0)
        view = cls(scenario, events, t0, **kwargs)
        view._read(events)
        return view

    def _read(self, events: list[dict[str, Any]]) -> None:
        invokes: dict[int, dict[str, Any]] = {}
        for e in events:
            t = e["t"] - self.t0
            f, kind = e.get("f"), e.get("type")
            if kind == "invoke":
                invokes[e["op"]] = e
            if f == "sample":
                self.samples.append(Sample(t, e.get("nodes", {}), e.get("block")))
            elif f == "publish" and kind != "invoke":
                start = invokes.get(e["op"], e)
                self.calls.append(Call(start.get("label", ""), start.get("target", ""),
                                       start["t"] - self.t0, t, kind or "",
                                       tuple((int(a[0]), int(a[1])) for a in e.get("acks", ())),
                                       e.get("error", ""), int(start.get("n", 0))))
            elif f == "fault" and kind != "invoke":
                start = invokes.get(e["op"], e)
                label = start.get("window", "")
                self.windows[label] = Window(label, start.get("kind", ""), start.get("target", ""),
                                             start["t"] - self.t0, t, None,
                                             e.get("error", "") if kind != "ok" else "")
            elif f == "heal" and kind == "ok" and e.get("window") in self.windows:
                w = self.windows[e["window"]]
                if w.end is None:
                    self.windows[w.label] = Window(w.label, w.kind, w.target, w.invoked, w.start, t,
                                                   w.error)
            elif f == "phase" and e.get("state") == "end" and e.get("phase") == "workload":
                self.workload_end = t
            elif f == "phase" and e.get("state") == "end" and e.get("phase") == "heal":
                self.heal = t
        self.calls.sort(key=lambda c: c.completed)

    # --- queries ----------------------------------------------------------------------------

    def acked_max(self, before: float, originators: set[int] | None = None,
                  invoked: bool = False) -> dict[int, int]:
        """Highest acked sequence id per originator among calls completed (or, with
        ``invoked``, started) before ``before``."""
        out: dict[int, int] = {}
        for c in self.calls:
            if (c.invoked if invoked else c.completed) >= before:
                continue
            for o, s in c.acks:
                if originators is None or o in originators:
                    out[o] = max(out.get(o, 0), s)
        return out

    def acks_between(self, start: float, end: float) -> dict[int, int]:
        """Envelopes acked per originator by calls completed in [start, end)."""
        out: dict[int, int] = {}
        for c in self.calls:
            if start <= c.completed < end:
                for o, _ in c.acks:
                    out[o] = out.get(o, 0) + 1
        return out

    def samples_between(self, start: float, end: float) -> list[Sample]:
        times = [s.t for s in self.samples]
        return self.samples[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]

    def sample_at(self, t: float) -> Sample | None:
        """The last sample taken at or before ``t``."""
        times = [s.t for s in self.samples]
        k = bisect.bisect_right(times, t)
        return self.samples[k - 1] if k else None

    def first_caught_up(self, wanted: dict[int, int], after: float,
                        nodes: list[str] | None = None) -> Sample | None:
        """The first sample after ``after`` in which every node holds ``wanted``."""
        for s in self.samples_between(after, float("inf")):
            if all(_holds(s.clock(n), wanted) for n in (nodes or list(self.nodes))):
                return s
        return None

    def window(self, label: str) -> Window | None:
        return self.windows.get(label)

    def events_of(self, f: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("f") == f]


def _holds(clock: dict[int, int] | None, wanted: dict[int, int]) -> bool:
    return clock is not None and all(clock.get(o, 0) >= s for o, s in wanted.items())


def behind(clock: dict[int, int] | None, wanted: dict[int, int]) -> dict[int, str]:
    """Per originator where ``clock`` lags ``wanted``: ``{200: "40/118"}``."""
    if clock is None:
        return {o: "unreadable" for o in wanted}
    return {o: f"{clock.get(o, 0)}/{s}" for o, s in sorted(wanted.items()) if clock.get(o, 0) < s}
