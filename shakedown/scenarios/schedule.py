"""Expand a scenario's fault schedule into timed steps, deterministically from one seed.

``plan(items, end_s, random.Random(seed))`` -> the same tuple of Planned steps for the same
seed, so a failing run can be replayed with ``--seed``. Pure: no clock, no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shakedown.errors import ConfigError
from shakedown.scenarios.api import ACTIONS, RATE_PARAMS, Action, At, Between, Fault, ScheduleItem


@dataclass(frozen=True)
class Planned:
    """One step: apply ``what`` at ``at_s``; clear a fault at ``clear_s`` (None: final heal).

    ``window`` names the fault window for the history, the checks and the plot:
    ``latency@node-200``, with ``#2``, ``#3`` for repeats.
    """

    at_s: float
    what: Fault | Action
    clear_s: float | None
    window: str

    def to_json(self) -> dict:
        return {"at_s": round(self.at_s, 3), "kind": self.what.kind, "target": self.what.target,
                "params": dict(getattr(self.what, "params", {}) or {}),
                "clear_s": None if self.clear_s is None else round(self.clear_s, 3),
                "window": self.window, "action": isinstance(self.what, Action)}


def plan(items: tuple[ScheduleItem, ...], end_s: float, rng: random.Random) -> tuple[Planned, ...]:
    """Every step of ``items`` in time order; ``end_s`` ends open-ended Between chaos.

    Raises ConfigError for a schedule that cannot run (negative times, min > max delay).
    """
    raw: list[tuple[float, Fault | Action, float | None]] = []
    for item in items:
        if isinstance(item, At):
            _check_at(item)
            clear = None if item.hold_s is None or isinstance(item.what, Action) \
                else item.at_s + item.hold_s
            raw.append((item.at_s, item.what, clear))
        else:
            raw += _expand(item, end_s, rng)
    raw.sort(key=lambda r: (r[0], r[1].label))
    seen: dict[str, int] = {}
    steps = []
    for at_s, what, clear_s in raw:
        seen[what.label] = seen.get(what.label, 0) + 1
        window = what.label if seen[what.label] == 1 else f"{what.label}#{seen[what.label]}"
        steps.append(Planned(at_s, what, clear_s, window))
    return tuple(steps)


def _check_at(item: At) -> None:
    if item.at_s < 0 or (item.hold_s is not None and item.hold_s < 0):
        raise ConfigError(f"At({item.at_s}, {item.what.label}): times must not be negative")
    if isinstance(item.what, Action) and item.what.kind not in ACTIONS:
        raise ConfigError(f"unknown action {item.what.kind!r}; known: {', '.join(ACTIONS)}")
    if isinstance(item.what, Action) and item.what.kind == "rates-set":
        unknown = set(item.what.params) - set(RATE_PARAMS)
        if unknown:
            raise ConfigError(f"SetRates: unknown field {sorted(unknown)[0]!r}; known: "
                              f"{', '.join(RATE_PARAMS)}")


def _expand(item: Between, end_s: float, rng: random.Random
            ) -> list[tuple[float, Fault | Action, float | None]]:
    """Logos-style chaos: delays drawn from the seed, targets rested for ``cooldown_s``."""
    if not item.faults:
        raise ConfigError("Between: needs at least one fault to choose from")
    if not 0 <= item.min_delay_s <= item.max_delay_s or item.max_delay_s <= 0:
        raise ConfigError(f"Between: delays must satisfy 0 <= min ({item.min_delay_s}) <= max "
                          f"({item.max_delay_s}) and max > 0")
    until = end_s if item.until_s is None else item.until_s
    busy_until: dict[str, float] = {}  # target -> when it may be faulted again
    out: list[tuple[float, Fault | Action, float | None]] = []
    t = item.start_s
    while True:
        t += rng.uniform(item.min_delay_s, item.max_delay_s)
        if t + item.hold_s > until:
            return out
        ready = [f for f in item.faults if busy_until.get(f.target, -1.0) <= t]
        if not ready:
            continue
        fault = ready[rng.randrange(len(ready))]
        out.append((t, fault, t + item.hold_s))
        busy_until[fault.target] = t + item.hold_s + item.cooldown_s
