"""The chaos event table: every event a schedule can hold, with its weight, probability and
parameters, changeable from the command line or a TOML file. Pure: no clock, no I/O but TOML.

A step of a schedule picks events by weight and keeps each by its probability (dmsg's shape,
see ``schedule``). An event is one of five families:

- ``publish``: a burst of envelopes to a node or through a gateway;
- ``open``: a fault that stays until a closing event or its expiry (``max_steps``) ends it
  (``stop``, ``kill``, ``partition``, ``churn-remove``), or until the final heal (``churn-add``);
- ``close``: ends open faults (``start`` one down node, ``heal`` every partition);
- ``timed``: a fault applied, held ``hold_min_s``..``hold_max_s``, and cleared within its step
  (toxics, ``pause``, ``restart`` with Logos' min/max delay and cooldown, ``clock-skew``,
  ``db-stop``, ``mining-stop``);
- ``instant``: one operation (``reorg``, ``rates``, ``deposit``, ``withdraw``,
  ``gateway-add``, ``gateway-remove``).

    table = apply_changes(default_table(), events=["kill:weight=2,p=0.5"], only=["publish", "kill"])
    table.get("kill").weight        # 2.0
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError

FAMILIES = ("publish", "open", "close", "timed", "instant")


@dataclass(frozen=True)
class Param:
    """One event parameter: its type, default and inclusive bounds (or choices)."""

    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, where: str, raw: Any) -> Any:
        """The typed value of ``raw``; ConfigError naming ``where`` when it does not fit."""
        if self.type is str:
            value: Any = str(raw)
            parts = [p.strip() for p in value.split(",") if p.strip()]
            bad = [p for p in parts if self.choices and p not in self.choices]
            if not parts or bad:
                raise ConfigError(f"{where}={raw!r}: choose from {', '.join(self.choices)} "
                                  "(comma separated)")
            return ",".join(parts)
        if isinstance(raw, bool):
            raise ConfigError(f"{where}={raw!r}: expected a number")
        try:
            value = self.type(float(raw)) if self.type is int and not isinstance(raw, int) \
                else self.type(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}={raw!r}: expected a number") from None
        if self.type is int and float(raw) != value:
            raise ConfigError(f"{where}={raw!r}: expected a whole number")
        if self.low is not None and self.high is None and value < self.low:
            raise ConfigError(f"{where}={raw}: must be at least {self.low:g}")
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise ConfigError(f"{where}={raw}: must be within {self.low:g}..{self.high:g}")
        return value


def _hold(low: float, high: float) -> dict[str, Param]:
    return {"hold_min_s": Param(float, low, 0.1, 600.0), "hold_max_s": Param(float, high, 0.1,
                                                                             600.0)}


_BURST = {"count": Param(int, 20, 1, 2000), "batch": Param(int, 2, 1, 200),
          "rate": Param(float, 20.0, 1.0, 5000.0)}
_EXPIRY = {"max_steps": Param(int, 3, 1, 1000)}
_AMOUNT = {"min_amount": Param(int, 1_000_000, 1, 10**15),
           "max_amount": Param(int, 100_000_000, 1, 10**15)}
SHAPES = ("node", "groups", "asymmetric")


@dataclass(frozen=True)
class EventType:
    """What an event does and which parameters it takes, with its default weight and p."""

    family: str
    summary: str
    weight: float
    p: float
    params: Mapping[str, Param] = field(default_factory=dict)


TYPES: dict[str, EventType] = {
    "publish": EventType("publish", "a burst straight to a random node, signed by a random "
                         "payer", 8.0, 1.0, _BURST),
    "publish-gateway": EventType("publish", "a burst through a random live gateway, which pays; "
                                 "it asks for a random node with probability ask", 3.0, 1.0,
                                 {**_BURST, "ask": Param(float, 0.5, 0.0, 1.0)}),
    "stop": EventType("open", "docker stop a node; until start or max_steps", 1.0, 0.8, _EXPIRY),
    "kill": EventType("open", "kill -9 a node; until start or max_steps", 1.0, 0.8, _EXPIRY),
    "start": EventType("close", "start one stopped or killed node", 2.0, 1.0),
    "pause": EventType("timed", "freeze a node for a while", 0.5, 0.8, _hold(1.0, 3.0)),
    "restart": EventType("timed", "stop a node and start it min_delay_s..max_delay_s later; a "
                         "node rests cooldown_s before its next restart", 1.0, 0.8,
                         {"min_delay_s": Param(float, 0.5, 0.0, 600.0),
                          "max_delay_s": Param(float, 3.0, 0.0, 600.0),
                          "cooldown_s": Param(float, 10.0, 0.0, 3600.0)}),
    "partition": EventType("open", "cut the network: one node off (node), two groups "
                           "(groups), or one group unable to reach the other (asymmetric); "
                           "until heal or max_steps", 1.5, 0.8,
                           {**_EXPIRY, "shapes": Param(str, ",".join(SHAPES), choices=SHAPES)}),
    "heal": EventType("close", "heal every open partition", 1.5, 1.0),
    "latency": EventType("timed", "latency on a node's proxy", 0.7, 0.8,
                         {"latency_ms": Param(int, 500, 1, 60_000), **_hold(1.0, 3.0)}),
    "bandwidth": EventType("timed", "a node's proxy throttled", 0.5, 0.8,
                           {"rate_kbps": Param(int, 16, 1, 10**7), **_hold(1.0, 3.0)}),
    "reset": EventType("timed", "a node's proxy resets every connection", 0.7, 0.8,
                       _hold(1.0, 3.0)),
    "timeout": EventType("timed", "a node's proxy stops passing data", 0.5, 0.8,
                         _hold(1.0, 3.0)),
    "clock-skew": EventType("timed", "a node's clock runs up to max_offset_s off", 0.3, 0.8,
                            {"max_offset_s": Param(float, 120.0, 1.0, 86_400.0),
                             **_hold(2.0, 4.0)}),
    "churn-add": EventType("open", "a node with a fresh identity joins (until the final heal); "
                           "at most max_nodes per run", 0.3, 0.5,
                           {"max_nodes": Param(int, 1, 0, 20)}),
    "churn-remove": EventType("open", "a node leaves the canonical network and stops; back "
                              "after max_steps; at least min_canonical stay", 0.3, 0.5,
                              {**_EXPIRY, "min_canonical": Param(int, 2, 1, 100)}),
    "gateway-add": EventType("instant", "start another gateway (its own payer key); at most "
                             "max_gateways live", 0.3, 0.5, {"max_gateways": Param(int, 3, 1, 9)}),
    "gateway-remove": EventType("instant", "remove a live gateway", 0.2, 0.5),
    "db-stop": EventType("timed", "stop the database server", 0.2, 0.5, _hold(1.0, 2.0)),
    "reorg": EventType("instant", "replace the chain's last 1..max_depth blocks (their "
                       "transactions mined again)", 0.4, 0.8, {"max_depth": Param(int, 2, 1, 64)}),
    "mining-stop": EventType("timed", "the chain stops mining", 0.3, 0.8, _hold(1.0, 3.0)),
    "rates": EventType("instant", "append rates with a message fee in min_fee..max_fee, in force "
                       "start_in_s later", 0.3, 0.5,
                       {"min_fee": Param(int, 500, 0, 10**12), "max_fee": Param(int, 5000, 0,
                                                                                10**12),
                        "start_in_s": Param(float, 2.0, 1.0, 3600.0)}),
    "deposit": EventType("instant", "a payer deposits min_amount..max_amount", 0.8, 1.0,
                         {"min_amount": Param(int, 10**9, 1, 10**15),
                          "max_amount": Param(int, 5 * 10**9, 1, 10**15)}),
    "withdraw": EventType("instant", "a payer with deposits and no pending withdrawal requests "
                          "one of min_amount..max_amount", 0.4, 1.0, _AMOUNT),
}
# Pairs that must satisfy low <= high once both are known.
_ORDERED = (("hold_min_s", "hold_max_s"), ("min_delay_s", "max_delay_s"),
            ("min_amount", "max_amount"), ("min_fee", "max_fee"))


@dataclass(frozen=True)
class EventSpec:
    """One row of the table: an event type with its weight, probability and parameters."""

    name: str
    weight: float
    p: float
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def type(self) -> EventType:
        return TYPES[self.name]

    @property
    def family(self) -> str:
        return self.type.family

    def param(self, key: str) -> Any:
        return dict(self.params)[key]

    def to_json(self) -> dict[str, Any]:
        return {"weight": self.weight, "p": self.p, **dict(self.params)}


@dataclass(frozen=True)
class EventTable:
    """Every event type, in catalogue order; weight 0 turns one off."""

    events: tuple[EventSpec, ...]

    def get(self, name: str) -> EventSpec:
        for spec in self.events:
            if spec.name == name:
                return spec
        raise ConfigError(f"unknown event {name!r}; known: {', '.join(TYPES)}")

    @property
    def active(self) -> tuple[EventSpec, ...]:
        return tuple(s for s in self.events if s.weight > 0 and s.p > 0)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.to_json() for s in self.events}

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Any]]) -> EventTable:
        """The table a schedule file recorded (validated like command-line changes)."""
        return apply_changes(default_table(), changes={k: dict(v) for k, v in data.items()})


def default_table() -> EventTable:
    return EventTable(tuple(
        EventSpec(name, t.weight, t.p, tuple((k, p.default) for k, p in t.params.items()))
        for name, t in TYPES.items()))


def _check_name(name: str, where: str) -> None:
    if name not in TYPES:
        raise ConfigError(f"{where}: unknown event {name!r}; known: {', '.join(TYPES)}")


def parse_event_option(text: str) -> tuple[str, dict[str, str]]:
    """``"kill:weight=2,p=0.5"`` -> ("kill", {"weight": "2", "p": "0.5"}); ConfigError else."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    _check_name(name, f"--event {text!r}")
    if not sep or not rest.strip():
        raise ConfigError(f"--event {text!r}: write NAME:KEY=VALUE[,KEY=VALUE...], e.g. "
                          "kill:weight=2,p=0.5")
    values: dict[str, str] = {}
    for pair in rest.split(","):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"--event {text!r}: {pair!r} is not KEY=VALUE")
        values[key.strip()] = value.strip()
    return name, values


def _changed(spec: EventSpec, values: Mapping[str, Any], where: str) -> EventSpec:
    known = TYPES[spec.name].params
    params = dict(spec.params)
    weight, p = spec.weight, spec.p
    for key, raw in values.items():
        at = f"{where} {spec.name}.{key}"
        if key == "weight":
            weight = Param(float, 0, 0.0).parse(at, raw)
        elif key == "p":
            p = Param(float, 0, 0.0, 1.0).parse(at, raw)
        elif key in known:
            params[key] = known[key].parse(at, raw)
        else:
            names = ", ".join(["weight", "p", *known])
            raise ConfigError(f"{where} {spec.name}: unknown parameter {key!r}; known: {names}")
    for low, high in _ORDERED:
        if low in params and params[low] > params[high]:
            raise ConfigError(f"{where} {spec.name}: {low}={params[low]:g} is above "
                              f"{high}={params[high]:g}")
    return replace(spec, weight=weight, p=p, params=tuple(params.items()))


def apply_changes(table: EventTable, *, events: Iterable[str] = (), only: Iterable[str] = (),
                  changes: Mapping[str, Mapping[str, Any]] | None = None,
                  where: str = "--event") -> EventTable:
    """The table with TOML-style ``changes``, then ``--event`` options, then ``--only``.

    ConfigError (one line) for an unknown event or parameter, a negative weight, a
    probability outside [0, 1], a bound crossed, or a table left with nothing to run.
    """
    by_name = {s.name: s for s in table.events}
    for name, values in (changes or {}).items():
        _check_name(name, where)
        by_name[name] = _changed(by_name[name], values, where)
    for text in events:
        name, values = parse_event_option(text)
        by_name[name] = _changed(by_name[name], values, "--event")
    kept = [n.strip() for item in only for n in item.split(",") if n.strip()]
    for name in kept:
        _check_name(name, "--only")
    if kept:
        by_name = {n: s if n in kept else replace(s, weight=0.0) for n, s in by_name.items()}
    out = EventTable(tuple(by_name[n] for n in TYPES))
    if not out.active:
        raise ConfigError("the event table has no event left with weight > 0 and p > 0")
    return out


def load_toml(path: Path) -> dict[str, Any]:
    """A chaos config file: ``[events.NAME]`` tables of changes and optional run sizes.

        events_count = 40      # --events
        check_every = 8        # --check-every
        [events.kill]
        weight = 2
        p = 0.5
    """
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config {path}: not TOML ({e})") from None
    allowed = {"events", "events_count", "check_every", "duration_s", "settle_s"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"--config {path}: unknown key {unknown[0]!r}; known: "
                          f"{', '.join(sorted(allowed))}")
    events = data.get("events", {})
    if not isinstance(events, dict) or not all(isinstance(v, dict) for v in events.values()):
        raise ConfigError(f"--config {path}: write each event as a table, e.g. [events.kill]")
    return data
