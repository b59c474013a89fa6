"""Propagation (Logos' transaction propagation and inclusion): one fixed batch of client
envelopes submitted to several nodes, each node getting them in its own random order and
from its own random offset, so the copies race each other through replication.

Each node a client envelope went to stores it under its own originator; every copy reaches
every node; no copy is stored twice; every node ends with the same set.

    Propagate(batch=120, to=("node-100", "node-200", "node-300"), spread_s=3)
    StoredOncePerOriginator("propagate")
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from refnode.envelopes import client_envelope
from shakedown.scenarios.api import CustomWorkload, Publish
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.history import History
from shakedown.scenarios.probe import payload_digest
from shakedown.scenarios.view import RunView
from shakedown.scenarios.workload import Publisher, Router


@dataclass(frozen=True)
class Propagate(CustomWorkload):
    """``batch`` client envelopes to each of ``to``: per node a random order, a start offset
    in [0, ``spread_s``], calls of ``chunk`` envelopes ``gap_s`` at most apart (all drawn
    from the run's seed; the payload bytes are random)."""

    batch: int = 120
    to: tuple[str, ...] = ("node-100", "node-200", "node-300")
    spread_s: float = 3.0
    chunk: int = 10
    gap_s: float = 0.4
    payers: int = 2
    start_s: float = 1.0
    label: str = "propagate"

    @property
    def end_s(self) -> float:
        return self.start_s + self.spread_s + -(-self.batch // self.chunk) * self.gap_s

    def publisher(self, router: Router, history: History, rng: random.Random) -> Publisher:
        return PropagationPublisher(self, router, history, rng)


@dataclass(frozen=True)
class Send:
    node: str
    at_s: float                # after the workload item started
    indices: tuple[int, ...]   # which envelopes of the batch, in this order


def plan_sends(spec: Propagate, rng: random.Random) -> list[Send]:
    """Every call of the workload, in time order (pure: the same rng gives the same plan)."""
    sends = []
    for node in spec.to:
        order = rng.sample(range(spec.batch), spec.batch)
        at = rng.uniform(0, spec.spread_s)
        for k in range(0, spec.batch, spec.chunk):
            sends.append(Send(node, round(at, 3), tuple(order[k:k + spec.chunk])))
            at += rng.uniform(0, spec.gap_s)
    return sorted(sends, key=lambda s: (s.at_s, s.node))


class PropagationPublisher(Publisher):
    """One thread per node plays that node's sends; each call is recorded like any publish."""

    def __init__(self, spec: Propagate, router: Router, history: History, rng: random.Random):
        self.propagate = spec
        super().__init__(Publish(to=spec.to, payers=spec.payers, workers=len(spec.to),
                                 label=spec.label), router, history, rate=0,
                         duration_s=spec.end_s - spec.start_s + 30, batch=spec.chunk,
                         label=spec.label, max_envelopes=spec.batch * len(spec.to))
        self.bodies = [client_envelope(self.topic, os.urandom(self.payload_size))
                       for _ in range(spec.batch)]
        self.sends = plan_sends(spec, rng)
        history.info("propagation", label=spec.label, batch=spec.batch,
                     payloads=[payload_digest(b) for b in self.bodies],
                     plan=[[s.node, s.at_s, list(s.indices)] for s in self.sends])

    def start(self) -> PropagationPublisher:
        began = time.monotonic()
        for node in self.propagate.to:
            mine = [s for s in self.sends if s.node == node]
            thread = threading.Thread(target=self._play, args=(mine, began), daemon=True,
                                      name=f"{self.label}-{node}")
            thread.start()
            self._threads.append(thread)
        return self

    def _play(self, sends: list[Send], began: float) -> None:
        clients: dict[str, Any] = {}
        try:
            for turn, send in enumerate(sends):
                if self._stop.wait(max(0.0, began + send.at_s - time.monotonic())):
                    return
                with self._lock:
                    self.stats.sent += len(send.indices)
                bodies = [self.bodies[i] for i in send.indices]
                self._publish(clients, self.router.nodes[send.node], bodies,
                              [payload_digest(b) for b in bodies], turn)
        finally:
            for client in clients.values():
                client.close()


@dataclass(frozen=True)
class StoredOncePerOriginator(Expectation):
    """For the batch of ``label``: on every canonical node, each client envelope is stored
    exactly once under each originator that acknowledged it, under no originator it was not
    sent to, and every node holds the same envelopes, byte for byte."""

    label: str = "propagate"

    @property
    def name(self) -> str:
        return f"stored-once-per-originator({self.label})"

    def check(self, view: RunView) -> Check:
        plan = next((e for e in view.events if e.get("f") == "propagation"
                     and e.get("label") == self.label), None)
        if plan is None:
            return self.failed(f"no propagation {self.label!r} in the history")
        batch = set(plan["payloads"])
        sent = {(p, view.nodes.get(node, -1)) for node, _, indices in plan["plan"]
                for p in (plan["payloads"][i] for i in indices)}
        acked = {(a[3], int(a[0])) for e in view.events
                 if e.get("f") == "publish" and e.get("type") == "ok" for a in e.get("acks", ())
                 if a[3] in batch}
        if not acked:
            return self.failed("no envelope of the batch was acknowledged")
        problems = []
        for node, store in sorted(view.stores.items()):
            copies = Counter((p, o) for (o, _), (_, p) in store.items() if p in batch)
            missing = sorted(acked - set(copies))
            twice = sorted(k for k, n in copies.items() if n > 1)
            stray = sorted(k for k in copies if k not in sent)
            for what, keys in (("lacks", missing), ("holds twice", twice),
                               ("holds under an originator it was not sent to", stray)):
                if keys:
                    problems.append(f"{node} {what} {len(keys)} copies (e.g. payload "
                                    f"{keys[0][0][:8]} of originator {keys[0][1]})")
        reference_node, reference = next(iter(sorted(view.stores.items())))
        differ = [n for n, store in sorted(view.stores.items()) if store != reference]
        if differ:
            problems.append(f"{', '.join(differ)} end with other envelopes than "
                            f"{reference_node}")
        details = {"batch": len(batch), "sent": len(sent), "acknowledged": len(acked),
                   "nodes": len(view.stores)}
        if problems:
            return self.failed("; ".join(problems[:3]), problems=problems, **details)
        return self.passed(f"{len(batch)} client envelopes sent {len(sent)} times: every "
                           f"acknowledged copy ({len(acked)}) once per originator on each of "
                           f"{len(view.stores)} nodes, all holding the same set", **details)
