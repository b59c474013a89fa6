"""Generate a chaos schedule from one seed. Pure: the same inputs give the same schedule.

Each step has dmsg's shape: draw how many events (1..``max_per_step``), pick them by weight,
keep each by its probability, then give each kept event a target and concrete parameters from
the same ``random.Random(seed)``. The generator follows the intended state (which nodes are
down, partitioned, churned; live gateways; the nominal clock for Logos' restart cooldown), so
it only schedules events that can run: a ``start`` names a down node, a partition only nodes
that are up, one chain operation per step, at least one node up. Nodes inside an open
partition are left alone by process faults (a restart would drop the iptables rules with the
network namespace), and churn waits for the partition to heal.

    schedule = generate(seed=7, table=default_table(), nodes=("node-100", "node-200",
                        "node-300"), gateways=("gateway",), payers=3, events=24, check_every=8)
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shakedown.chaos.events import SHAPES, EventSpec, EventTable
from shakedown.chaos.schedule import Event, Schedule, node_id_of, node_name
from shakedown.errors import ConfigError

STEP_GAP_S = 0.5          # nominal pause between steps (cooldowns are measured on this clock)
MIN_STEP_S = 0.5
NODE_STEP = 100


@dataclass
class _State:
    """The intended state the generator schedules against (never what a run observed)."""

    canonical: list[str]
    gateways: list[str]
    payers: int
    down: dict[str, str] = field(default_factory=dict)          # node -> stop/kill window
    removed: dict[str, str] = field(default_factory=dict)       # node -> churn-remove window
    partition: tuple[str, frozenset[str]] | None = None         # window, frozen members
    open: dict[str, Event] = field(default_factory=dict)        # window -> opening event
    registered: int = 0
    churned: int = 0
    gateway_adds: int = 0
    restarted_at: dict[str, float] = field(default_factory=dict)
    deposited: Counter[int] = field(default_factory=Counter)
    withdrawing: set[int] = field(default_factory=set)
    windows: Counter[str] = field(default_factory=Counter)
    t: float = 0.0

    @property
    def up(self) -> list[str]:
        return sorted((n for n in self.canonical if n not in self.down), key=node_id_of)

    def frozen(self) -> frozenset[str]:
        return self.partition[1] if self.partition else frozenset()

    def window(self, label: str) -> str:
        self.windows[label] += 1
        k = self.windows[label]
        return label if k == 1 else f"{label}#{k}"

    def close(self, window: str) -> None:
        """What closing ``window`` (by an event or its expiry) changes."""
        opener = self.open.pop(window, None)
        if opener is None:
            return
        if opener.name in ("stop", "kill"):
            self.down.pop(opener.target, None)
        elif opener.name == "partition":
            self.partition = None
        elif opener.name == "churn-remove":
            self.removed.pop(opener.target, None)
            self.canonical.append(opener.target)


def _r(x: float) -> float:
    return round(x, 3)


class _Builder:
    """Turns one picked table row into a concrete event, or None when nothing fits now."""

    def __init__(self, state: _State, rng: random.Random, step: int, claimed: set[str]):
        self.s, self.rng, self.step, self.claimed = state, rng, step, claimed

    def pick(self, names: list[str]) -> str | None:
        return self.rng.choice(names) if names else None

    def movable(self) -> list[str]:
        frozen = self.s.frozen()
        return [n for n in self.s.up if n not in self.claimed and n not in frozen]

    def hold(self, p: Mapping[str, Any]) -> float:
        return _r(self.rng.uniform(p["hold_min_s"], p["hold_max_s"]))

    def build(self, spec: EventSpec, n: int) -> Event | None:
        p = dict(spec.params)
        method = getattr(self, "_" + spec.name.replace("-", "_"))
        made: tuple[str, dict[str, Any]] | None = method(p)
        if made is None:
            return None
        target, params = made
        ev = Event(n, self.step, spec.name, target, params)
        if spec.family in ("open", "timed"):
            ev = replace(ev, window=self.s.window(f"{spec.name}@{target}"))
        if spec.family == "open" and "max_steps" in p:
            ev = replace(ev, until_step=self.step + int(p["max_steps"]))
        return self._record(ev)

    def _record(self, ev: Event) -> Event:
        s = self.s
        if ev.name in ("stop", "kill"):
            s.down[ev.target] = ev.window
        elif ev.name == "partition":
            members = {*ev.target.split(","), *str(ev.params.get("others", "")).split(",")}
            s.partition = (ev.window, frozenset(m for m in members if m))
        elif ev.name == "churn-remove":
            s.canonical.remove(ev.target)
            s.removed[ev.target] = ev.window
        elif ev.name == "start" or ev.name == "heal":
            closes = (s.down[ev.target],) if ev.name == "start" else (s.partition[0],)  # type: ignore[index]
            ev = replace(ev, closes=closes)
            for window in closes:
                s.close(window)
        if ev.window and ev.name in ("stop", "kill", "partition", "churn-remove", "churn-add"):
            s.open[ev.window] = ev
        return ev

    # --- one method per event: (target, params) or None ----------------------------------

    def _publish(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self.pick(self.s.up)
        if target is None:
            return None
        return target, {"count": p["count"], "batch": p["batch"], "rate": p["rate"],
                        "payer": self.rng.randrange(self.s.payers)}

    def _publish_gateway(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        gateway = self.pick([g for g in self.s.gateways if g not in self.claimed])
        if gateway is None:
            return None
        self.claimed.add(gateway)
        ask = self.pick(self.s.up) if self.s.up and self.rng.random() < p["ask"] else None
        return gateway, {"count": p["count"], "batch": p["batch"], "rate": p["rate"],
                         "node": ask or ""}

    def _node_fault(self, keep_one_up: bool = True) -> str | None:
        if keep_one_up and len(self.s.up) <= 1:
            return None
        target = self.pick(self.movable())
        if target is not None:
            self.claimed.add(target)
        return target

    def _stop(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self._node_fault()
        return None if target is None else (target, {})

    _kill = _stop

    def _start(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self.pick(sorted((n for n in self.s.down if n not in self.claimed),
                                  key=node_id_of))
        if target is None:
            return None
        self.claimed.add(target)
        return target, {}

    def _pause(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self._node_fault()
        return None if target is None else (target, {"hold_s": self.hold(p)})

    def _restart(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        rested = [n for n in self.movable()
                  if self.s.t - self.s.restarted_at.get(n, -1e9) >= p["cooldown_s"]]
        if len(self.s.up) <= 1 or not rested:
            return None
        target = self.rng.choice(rested)
        self.claimed.add(target)
        self.s.restarted_at[target] = self.s.t
        return target, {"delay_s": _r(self.rng.uniform(p["min_delay_s"], p["max_delay_s"]))}

    def _partition(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        eligible = [n for n in self.s.up if n not in self.claimed]
        if self.s.partition is not None or len(eligible) < 2:
            return None
        shapes = [s for s in SHAPES if s in str(p["shapes"]).split(",")]
        shape = self.rng.choice(shapes)
        if shape == "node":
            target = self.rng.choice(eligible)
            self.claimed.add(target)
            return target, {"shape": shape}
        order = list(eligible)
        self.rng.shuffle(order)
        k = self.rng.randint(1, len(order) - 1)
        group = sorted(order[:k], key=node_id_of)
        others = sorted(order[k:], key=node_id_of)
        self.claimed.update(eligible)
        return ",".join(group), {"shape": shape, "others": ",".join(others)}

    def _heal(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if self.s.partition is None or self.claimed & self.s.partition[1]:
            return None
        self.claimed.update(self.s.partition[1])
        return "network", {}

    def _toxic(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self.pick(sorted((n for n in self.s.canonical if n not in self.claimed),
                                  key=node_id_of))
        if target is None:
            return None
        self.claimed.add(target)
        return target, params

    def _latency(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        return self._toxic({"latency_ms": p["latency_ms"], "hold_s": self.hold(p)})

    def _bandwidth(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        return self._toxic({"rate_kbps": p["rate_kbps"], "hold_s": self.hold(p)})

    def _reset(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        return self._toxic({"hold_s": self.hold(p)})

    _timeout = _reset

    def _clock_skew(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self._node_fault()
        if target is None:
            return None
        offset = round(self.rng.uniform(-p["max_offset_s"], p["max_offset_s"]), 1) \
            or p["max_offset_s"]
        return target, {"offset_s": offset, "hold_s": self.hold(p)}

    def _chain_free(self, *also: str) -> bool:
        if self.claimed & {"chain", *also}:
            return False
        self.claimed.update({"chain", *also})
        return True

    def _churn_add(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if self.s.partition is not None or self.s.churned >= p["max_nodes"] or \
                not self._chain_free("db"):
            return None
        self.s.churned += 1
        self.s.registered += 1
        name = node_name(self.s.registered * NODE_STEP)
        self.s.canonical.append(name)
        self.claimed.add(name)
        return name, {}

    def _churn_remove(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if self.s.partition is not None or len(self.s.canonical) <= p["min_canonical"] \
                or len(self.s.up) <= 1 or "chain" in self.claimed:
            return None
        target = self.pick(self.movable())
        if target is None or not self._chain_free():
            return None
        self.claimed.add(target)
        return target, {}

    def _gateway_add(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if len(self.s.gateways) >= p["max_gateways"]:
            return None
        self.s.gateway_adds += 1
        name = f"gateway-{self.s.gateway_adds + 1}"
        self.s.gateways.append(name)
        self.claimed.add(name)
        return name, {"key": self.s.gateway_adds}

    def _gateway_remove(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        target = self.pick([g for g in self.s.gateways if g not in self.claimed])
        if target is None:
            return None
        self.s.gateways.remove(target)
        self.claimed.add(target)
        return target, {}

    def _db_stop(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if "db" in self.claimed:
            return None
        self.claimed.add("db")
        return "db", {"hold_s": self.hold(p)}

    def _reorg(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if not self._chain_free():
            return None
        return "chain", {"depth": self.rng.randint(1, p["max_depth"])}

    def _mining_stop(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if not self._chain_free():
            return None
        return "chain", {"hold_s": self.hold(p)}

    def _rates(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if not self._chain_free():
            return None
        return "chain", {"message_fee": self.rng.randint(p["min_fee"], p["max_fee"]),
                         "start_in_s": p["start_in_s"]}

    def _deposit(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if not self._chain_free():
            return None
        payer = self.rng.randrange(self.s.payers)
        amount = self.rng.randint(p["min_amount"], p["max_amount"])
        self.s.deposited[payer] += amount
        return f"payer-{payer}", {"amount": amount}

    def _withdraw(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        able = [k for k in range(self.s.payers) if k not in self.s.withdrawing
                and self.s.deposited[k] >= 2 * p["min_amount"]]
        if not able or "chain" in self.claimed:
            return None
        payer = self.rng.choice(able)
        self._chain_free()
        amount = self.rng.randint(p["min_amount"], min(p["max_amount"],
                                                       self.s.deposited[payer] // 2))
        self.s.withdrawing.add(payer)
        return f"payer-{payer}", {"amount": amount}


def _duration(ev: Event) -> float:
    if ev.name.startswith("publish"):
        return float(ev.params["count"]) / float(ev.params["rate"])
    return float(ev.params.get("hold_s", ev.params.get("delay_s", MIN_STEP_S)))


def generate(*, seed: int, table: EventTable, nodes: tuple[str, ...],
             gateways: tuple[str, ...], payers: int, events: int, check_every: int,
             max_per_step: int = 3) -> Schedule:
    """The schedule of ``events`` events for this seed and topology (see the module doc).

    Raises ConfigError when a size is out of range or the table yields nothing runnable.
    """
    if events <= 0:
        raise ConfigError(f"--events {events}: must be at least 1")
    if check_every <= 0:
        raise ConfigError(f"--check-every {check_every}: must be at least 1")
    if payers <= 0:
        raise ConfigError(f"payers {payers}: must be at least 1")
    if not nodes:
        raise ConfigError("a chaos schedule needs at least one node")
    rng = random.Random(seed)
    state = _State(canonical=sorted(nodes, key=node_id_of), gateways=list(gateways),
                   payers=payers, registered=max(node_id_of(n) for n in nodes) // NODE_STEP)
    specs = list(table.active)
    weights = [s.weight for s in specs]
    out: list[Event] = []
    pace: dict[int, float] = {}
    step = 0
    while len(out) < events and step < 50 * events:
        step += 1
        for opener in [e for e in state.open.values() if e.until_step == step]:
            state.close(opener.window)
        claimed: set[str] = set()
        builder = _Builder(state, rng, step, claimed)
        made: list[Event] = []
        for spec in rng.choices(specs, weights=weights, k=rng.randint(1, max_per_step)):
            if rng.random() >= spec.p or len(out) + len(made) >= events:
                continue
            ev = builder.build(spec, len(out) + len(made) + 1)
            if ev is not None:
                made.append(ev)
        out += made
        length = max([MIN_STEP_S, *map(_duration, made)]) + STEP_GAP_S
        if made:
            pace[step] = _r(length)
        state.t += length
    if not out:
        raise ConfigError("the event table yields no event that can run on this topology; "
                          "give publish or a node fault some weight")
    return Schedule(seed, tuple(nodes), tuple(gateways), payers, check_every, table, tuple(out),
                    {k: v for k, v in pace.items() if k <= out[-1].step})
