"""A chaos schedule: its events in steps, and the canonical file that is the replay artifact.

Events of one step run concurrently. Open faults end at a closing event or at ``until_step``,
before that step's events; whatever is open after the last step ends at the final heal. A
checkpoint runs after each step in which the running event count crosses a multiple of
``check_every``. ``generate`` (in ``generate.py``) makes one from a seed.

    schedule = Schedule.read(run_dir / "schedule.json")
    for step, events in schedule.steps(): ...
    schedule.without([3, 7]).to_text()      # canonical JSON, byte-identical for equal schedules
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shakedown.chaos.events import EventTable
from shakedown.errors import ConfigError

SCHEMA = "shakedown/chaos-schedule/v1"


def node_name(node_id: int) -> str:
    return f"node-{node_id}"


def node_id_of(name: str) -> int:
    return int(name.removeprefix("node-"))


@dataclass(frozen=True)
class Event:
    """One scheduled event: its number, step, table event, target and drawn parameters.

    ``window`` names what an open or timed fault opens (``stop@node-300#2``); ``closes`` the
    windows a closing event ends; ``until_step`` when an open fault ends by itself.
    """

    n: int
    step: int
    name: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    window: str = ""
    closes: tuple[str, ...] = ()
    until_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "step": self.step, "name": self.name, "target": self.target,
                "params": dict(self.params), "window": self.window, "closes": list(self.closes),
                "until_step": self.until_step}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Event:
        return cls(int(d["n"]), int(d["step"]), str(d["name"]), str(d["target"]),
                   dict(d.get("params") or {}), str(d.get("window") or ""),
                   tuple(d.get("closes") or ()), d.get("until_step"))

    def describe(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        tail = f" closes {', '.join(self.closes)}" if self.closes else ""
        until = f" until step {self.until_step}" if self.until_step else ""
        return f"#{self.n} step {self.step}: {self.name} {self.target} {shown}".rstrip() \
            + tail + until


@dataclass(frozen=True)
class Schedule:
    """The replay artifact: everything a run needs to play the same events again.

    ``pace`` keeps each step's nominal length (its longest event plus a gap): a step lasts at
    least that long, also once shrinking removed its events, so what remains keeps its timing.
    """

    seed: int
    nodes: tuple[str, ...]
    gateways: tuple[str, ...]
    payers: int
    check_every: int
    table: EventTable
    events: tuple[Event, ...]
    pace: Mapping[int, float] = field(default_factory=dict)  # step -> its nominal seconds

    @property
    def last_step(self) -> int:
        return max((e.step for e in self.events), default=0)

    def opened_before(self, step: int) -> list[Event]:
        """Openers of windows still open when ``step`` begins (not closed, not expired)."""
        closed = {w for e in self.events if e.step < step for w in e.closes}
        def still_open(e: Event) -> bool:
            if e.until_step is None:  # open until the final heal
                return e.name == "churn-add"
            return e.until_step > step

        return [e for e in self.events if e.step < step and e.window and e.window not in closed
                and still_open(e)]

    def steps(self) -> list[tuple[int, list[Event]]]:
        """(step, its events) for every step from 1 to the last, empty ones included."""
        by_step: dict[int, list[Event]] = {}
        for e in self.events:
            by_step.setdefault(e.step, []).append(e)
        return [(s, by_step.get(s, [])) for s in range(1, self.last_step + 1)]

    def expiring(self, step: int) -> list[Event]:
        """Open faults whose ``until_step`` is ``step``: cleared before its events."""
        return [e for e in self.events if e.until_step == step]

    def checkpoint_steps(self) -> dict[int, int]:
        """step -> number of the last event before the checkpoint that follows it."""
        out: dict[int, int] = {}
        done = 0
        for step, events in self.steps():
            before, done = done, done + len(events)
            if events and done // self.check_every > before // self.check_every:
                out[step] = events[-1].n
        return out

    def without(self, numbers: Iterable[int]) -> Schedule:
        """This schedule minus the named events, and minus closes of windows no longer opened
        (a closing event left with nothing to close goes too); steps keep their numbers."""
        drop = set(numbers)
        kept = [e for e in self.events if e.n not in drop]
        opened = {e.window for e in kept if e.window}
        out = []
        for e in kept:
            if e.closes:
                closes = tuple(w for w in e.closes if w in opened)
                if not closes:
                    continue
                e = replace(e, closes=closes)
            out.append(e)
        return replace(self, events=tuple(out))

    def only(self, numbers: Iterable[int]) -> Schedule:
        keep = set(numbers)
        return self.without(e.n for e in self.events if e.n not in keep)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "seed": self.seed,
                "testnet": {"nodes": list(self.nodes), "gateways": list(self.gateways),
                            "payers": self.payers},
                "check_every": self.check_every, "table": self.table.to_json(),
                "events": [e.to_json() for e in self.events],
                "pace": {str(k): v for k, v in sorted(self.pace.items())}}

    def to_text(self) -> str:
        """Canonical JSON: sorted keys, fixed indentation, one trailing newline."""
        return json.dumps(self.to_json(), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_text(cls, text: str, where: str = "schedule") -> Schedule:
        try:
            data = json.loads(text)
            if data.get("schema") != SCHEMA:
                raise ConfigError(f"{where}: not a chaos schedule (schema {data.get('schema')!r}"
                                  f", expected {SCHEMA!r})")
            net = data["testnet"]
            return cls(int(data["seed"]), tuple(net["nodes"]), tuple(net["gateways"]),
                       int(net["payers"]), int(data["check_every"]),
                       EventTable.from_json(data["table"]),
                       tuple(Event.from_json(e) for e in data["events"]),
                       {int(k): float(v) for k, v in (data.get("pace") or {}).items()})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{where}: unreadable chaos schedule ({type(e).__name__}: {e})") \
                from None

    @classmethod
    def read(cls, path: Path) -> Schedule:
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the schedule ({e.strerror})") from None
        return cls.from_text(text, str(path))
