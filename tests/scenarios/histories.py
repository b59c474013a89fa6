"""Hand-made histories for the pure tests: a workload, samples, fault windows, a settle."""

from __future__ import annotations

import itertools
from typing import Any

from shakedown.scenarios import Scenario
from shakedown.scenarios.view import RunView

NODES = {"node-100": 100, "node-200": 200, "node-300": 300}


class Events:
    """Build a history; times are scenario seconds (the workload starts at history t=5)."""

    T0 = 5.0

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._ops = itertools.count(1)
        self.seq = dict.fromkeys(NODES.values(), 0)
        self.add(-1, "info", "phase", phase="workload", state="start")

    def add(self, t: float, type_: str, f: str, **value: Any) -> int:
        self.events.append({"i": len(self.events) + 1, "t": self.T0 + t, "wall": 1e9 + t,
                            "type": type_, "f": f, **value})
        return value.get("op", 0)

    def publish(self, t: float, node: int, n: int = 5, ok: bool = True,
                label: str = "publish", target: str = "") -> None:
        op = next(self._ops)
        self.add(t - 0.01, "invoke", "publish", op=op, label=label,
                 target=target or f"node-{node}", n=n)
        if ok:
            acks = []
            for _ in range(n):
                self.seq[node] += 1
                s = self.seq[node]
                acks.append([node, s, f"d{node}-{s}", f"p{node}-{s}"])
            self.add(t, "ok", "publish", op=op, acks=acks)
        else:
            self.add(t, "info", "publish", op=op, error="UNAVAILABLE",
                     payloads=[f"u{op}-{k}" for k in range(n)])

    def sample(self, t: float, clocks: dict[str, dict[int, int]]) -> None:
        self.add(t, "info", "sample", nodes={
            name: {"count": sum(c.values()), "clock": {str(o): s for o, s in c.items()}}
            for name, c in clocks.items()})

    def window(self, label: str, start: float, end: float | None, kind: str = "blackhole",
               target: str = "node-300") -> None:
        op = next(self._ops)
        self.add(start - 0.05, "invoke", "fault", op=op, window=label, kind=kind, target=target)
        self.add(start, "ok", "fault", op=op)
        if end is not None:
            heal = next(self._ops)
            self.add(end - 0.05, "invoke", "heal", op=heal, window=label)
            self.add(end, "ok", "heal", op=heal, window=label)

    def settle(self, t: float, ok: bool = True, after_s: float = 0.5) -> None:
        self.add(t, "ok" if ok else "fail", "settle", op=next(self._ops), after_s=after_s)

    def all_at(self) -> dict[int, int]:
        return dict(self.seq)

    def stores(self, drop: tuple[str, int, int] | None = None) -> dict[str, dict]:
        """Every node holding every acknowledged envelope; ``drop`` (node, originator,
        sequence) takes one away."""
        held = {(a[0], a[1]): (a[2], a[3]) for e in self.events
                if e["f"] == "publish" and e["type"] == "ok" for a in e["acks"]}
        return {n: {k: v for k, v in held.items() if (n, *k) != drop} for n in NODES}

    def view(self, **kwargs: Any) -> RunView:
        self.events.sort(key=lambda e: e["t"])
        return RunView.from_history(Scenario(name="t", description="t"), self.events,
                                    nodes=dict(NODES), **kwargs)


def replicated_run(leak: bool = False, stuck: bool = False) -> Events:
    """node-300 black-holed from 2 s to 6 s; publishes to every node every 0.5 s until 9 s."""
    ev = Events()
    ev.window("blackhole@node-300", 2.0, 6.0)
    held = {n: dict.fromkeys(NODES.values(), 0) for n in NODES}
    t = 0.0
    while t < 9.0:
        for node in NODES.values():
            ev.publish(t + 0.1, node)
        cut = 2.0 <= t < 6.0
        for name in NODES:
            for o in NODES.values():
                isolated = cut and (o == 300) != (name == "node-300")
                if stuck and name == "node-100" and o != 100 and t >= 2.0:
                    continue
                if not isolated or (leak and name == "node-100" and t > 4):
                    held[name][o] = ev.seq[o]
        ev.sample(t + 0.3, {n: dict(c) for n, c in held.items()})
        t += 0.5
    ev.settle(10.0, ok=not stuck)
    return ev
