"""Run a chaos schedule on a fresh testnet, on the scenario runner's lifecycle.

``ChaosRun`` is a scenario run (deploy, final heal, settle, checks, logs, teardown, reports,
all from ``shakedown.scenarios.runner``) whose workload is the schedule: step by step, the
expired open faults are cleared, the step's events run concurrently, their outcomes go to the
model in event order, and after each step that crosses a multiple of ``check_every`` events a
checkpoint compares a snapshot with the model's prediction. The first failing checkpoint ends
the events (``stop_on_mismatch``). The final heal clears every open window, newest first, and
churned-in nodes last, once their envelopes replicated; the final checkpoint runs with the
checks, after the settle. The checks are one per model property, ``chaos-schedule``, the
history set checker and the verify suite.

    result = run_scenario(chaos_scenario("chaos", ChaosSpec(events=24)), RunOptions(seed=7))
    result.run_dir / "schedule.json"       # written before anything ran
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shakedown.chaos.checks import Checkpoint, ScheduleRan, poll_checkpoint, property_checks
from shakedown.chaos.events import EventTable, default_table
from shakedown.chaos.faults import ChaosFaults
from shakedown.chaos.generate import generate
from shakedown.chaos.model import Model, Range
from shakedown.chaos.observed import NodeView
from shakedown.chaos.perform import TTL_MARGIN_S, Outcome, Stage, clear_window, perform
from shakedown.chaos.schedule import Event, Schedule
from shakedown.chaos.snapshot import Snapshotter
from shakedown.errors import ShakedownError, TimeoutExpired
from shakedown.keys import gateway as gateway_key
from shakedown.keys import payer as payer_key
from shakedown.scenarios.api import Scenario, Topology
from shakedown.scenarios.driver import Driver
from shakedown.scenarios.expectations import Expectation, HistorySet
from shakedown.scenarios.provision import RunTestnet
from shakedown.scenarios.runner import Run, RunOptions
from shakedown.scenarios.schedule import Planned
from shakedown.scenarios.verify_suite import VerifySuite
from shakedown.traffic import NodeTarget
from shakedown.waiting import wait_for

REPORT_INTERVAL_S = 20  # payer reports settle during a run, and a restart often falls between


@dataclass(frozen=True)
class ChaosSpec:
    """What the engine runs: sizes, the event table, how long a checkpoint may wait."""

    events: int = 40
    check_every: int = 10
    duration_s: float = 600.0
    settle_s: float = 60.0
    payers: int = 3
    table: EventTable = field(default_factory=default_table)
    max_per_step: int = 3
    stop_on_mismatch: bool = True
    stop_on: str = ""  # shrinking: the property to reproduce; once it fails, nothing more


def chaos_scenario(name: str, spec: ChaosSpec, *, nodes: int = 3, gateways: int = 1,
                   description: str = "", node_env: dict[int, dict[str, str]] | None = None
                   ) -> Scenario:
    """The scenario the runner runs for a chaos spec: its topology, no scripted workload."""
    env = {(k + 1) * 100: {"REFNODE_REPORT_INTERVAL_S": str(REPORT_INTERVAL_S)}
           for k in range(nodes)}
    for node_id, values in (node_env or {}).items():
        env.setdefault(node_id, {}).update(values)
    return Scenario(name=name, description=description or "seeded random chaos events, "
                    "checked against the model", topology=Topology(nodes=nodes,
                                                                   gateways=gateways,
                                                                   node_env=env),
                    workload=(), faults=(), settle_s=spec.settle_s, chaos=spec)


class ChaosRun(Run):
    """A scenario run whose workload is a chaos schedule (generated from the seed, or given)."""

    def __init__(self, scenario: Scenario, options: RunOptions, schedule: Schedule | None = None,
                 model_only: bool = False):
        spec: ChaosSpec = scenario.chaos
        seed = schedule.seed if schedule is not None else options.seed
        if seed is None:
            seed = random.SystemRandom().randrange(1, 2**31)
        topology = scenario.topology
        self.schedule = schedule or generate(
            seed=seed, table=spec.table, nodes=topology.node_names,
            gateways=("gateway",) if topology.gateways else (), payers=spec.payers,
            events=spec.events, check_every=spec.check_every, max_per_step=spec.max_per_step)
        super().__init__(scenario, dataclasses.replace(options, seed=seed))
        self.spec = spec
        self.model_only = model_only
        self.engine: Engine | None = None
        (self.result.run_dir / "schedule.json").write_text(self.schedule.to_text())
        (self.result.run_dir / "chaos.json").write_text(json.dumps(self.config(), indent=1,
                                                                   sort_keys=True) + "\n")
        self.history.info("plan", scenario=scenario.name, seed=seed, chaos={
            "events": len(self.schedule.events), "steps": self.schedule.last_step,
            "check_every": self.schedule.check_every, "schedule": "schedule.json"})

    def config(self) -> dict[str, Any]:
        """How this run ran besides its schedule (what ``--replay`` takes again)."""
        topo = self.scenario.topology
        return {"name": self.scenario.name, "description": self.scenario.description,
                "nodes": topo.nodes, "gateways": topo.gateways,
                "node_env": {str(k): dict(v) for k, v in topo.node_env.items()},
                "images": dict(self.options.images), "duration_s": self.spec.duration_s,
                "settle_s": self.spec.settle_s, "stop_on_mismatch": self.spec.stop_on_mismatch}

    def _make_injector(self, net: RunTestnet, needed: bool) -> Any:
        return ChaosFaults.for_testnet(net.model)

    def _workload(self, driver: Driver, schedule: tuple[Planned, ...]) -> None:
        self.engine = Engine(self, driver)
        self.engine.run()

    def _heal(self, driver: Driver) -> None:
        if self.engine is not None:
            self.engine.final_heal()
        driver.heal()

    def _expectations(self) -> list[Expectation]:
        engine = self.engine
        if engine is None:
            return []
        checks: list[Expectation] = [*property_checks(engine.finish),
                                     ScheduleRan(engine.summary)]
        return checks if self.model_only else [*checks, HistorySet(), VerifySuite()]


class Engine:
    """The schedule played on one testnet, the model beside it, checkpoints on the way."""

    def __init__(self, run: ChaosRun, driver: Driver):
        self.run_, self.driver, self.spec, self.schedule = run, driver, run.spec, run.schedule
        record = driver.record
        self.stage = Stage(run.net, record, run.history, driver.injector,  # type: ignore[arg-type]
                           Snapshotter(record), driver.stop, driver.publishers,
                           ttl_s=self.spec.duration_s + 2 * self.spec.settle_s + TTL_MARGIN_S)
        self.stage.nodes = {n["name"]: NodeTarget(n["grpc"], int(n["node_id"]))
                            for n in record["nodes"]}
        if record.get("gateway"):
            self.stage.gateways["gateway"] = record["gateway"]["grpc"]
            self.stage.gateway_payers["gateway"] = gateway_key(0).address.lower()
        rates = len(self.stage.chain().rates())
        self.model = Model({n: t.node_id for n, t in self.stage.nodes.items()},
                           payers={f"payer-{i}": payer_key(i).address
                                   for i in range(self.schedule.payers)},
                           gateways=dict(self.stage.gateway_payers), rates=Range(rates, rates))
        self.outcomes: list[Outcome] = []
        self.errors: list[str] = []
        self.checkpoints: list[Checkpoint] = []
        self.previous: dict[str, NodeView] = {}
        self.churned: dict[str, str] = {}        # churn-add window -> node
        self.cut_short = ""
        self._final: Checkpoint | None = None

    def say(self, line: str) -> None:
        self.run_.say(f"t={self.driver.elapsed():.1f}s {line}")

    # --- the events ---------------------------------------------------------------------

    def run(self) -> None:
        self.driver.t0 = time.monotonic()
        history = self.run_.history
        history.info("phase", phase="workload", state="start")
        marks = self.schedule.checkpoint_steps()
        deadline = self.driver.t0 + self.spec.duration_s
        first = min((e.step for e in self.schedule.events), default=0)
        try:
            for step, events in self.schedule.steps():
                if self.driver.stop.is_set():
                    break
                if time.monotonic() >= deadline:
                    self.cut_short = f"the {self.spec.duration_s:g}s bound came before step {step}"
                    break
                began = time.monotonic()
                for opener in self.schedule.expiring(step):
                    self._clear(opener.window, opener.n, "expired")
                if events:
                    self._step(step, events)
                # a step lasts its nominal pace, also when shrinking emptied it
                if step >= first:
                    self.driver.stop.wait(max(0.0, self.schedule.pace.get(step, 0.0)
                                              - (time.monotonic() - began)))
                if step in marks:
                    cp = self.checkpoint(marks[step])
                    if cp.mismatches and self.spec.stop_on_mismatch:
                        self.cut_short = f"{cp.label} failed"
                        break
        finally:
            ran = len(self.outcomes)
            history.info("phase", phase="workload", state="end", events=ran,
                         acked=len(self.model.acked), unsure=len(self.model.unsure))
            self.say(f"{ran} of {len(self.schedule.events)} events ran, "
                     f"{len(self.model.acked)} envelopes acked")

    def _step(self, step: int, events: list[Event]) -> None:
        done: dict[int, Outcome] = {}
        threads = [threading.Thread(target=lambda e=e: done.__setitem__(e.n, perform(
            self.stage, e)), name=f"chaos-{e.n}", daemon=True) for e in events]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
        for ev in events:
            outcome = done.get(ev.n) or Outcome(ev, "fail", "did not finish")
            self._learn(outcome)
            self.run_.history.info("chaos-event", n=ev.n, step=step, name=ev.name,
                                   target=ev.target, status=outcome.status,
                                   error=outcome.error, acked=len(outcome.acks),
                                   unsure=len(outcome.unsure))
        self.say(f"step {step}: " + ", ".join(
            f"#{e.n} {e.name} {e.target}" + ("" if done.get(e.n) and done[e.n].status == "ok"
                                            else f" ({done[e.n].status if e.n in done else '?'})")
            for e in events))

    def _clear(self, window: str, event: int, why: str) -> None:
        try:
            if clear_window(self.stage, window):
                self.model.cleared(event, window)
        except ShakedownError as e:  # the model keeps it in force: it may still be
            self.errors.append(f"clearing {window} ({why}): {e}"[:300])

    def _learn(self, o: Outcome) -> None:
        """Tell the model what one event did."""
        ev, m, ok = o.event, self.model, o.status == "ok"
        self.outcomes.append(o)
        if o.status == "fail" and not ev.name.startswith("publish"):
            self.errors.append(f"#{ev.n} {ev.name} {ev.target}: {o.error}")
        name = ev.name
        if name.startswith("publish"):
            m.published(ev.n, o.acks, o.unsure)
        elif name in ("stop", "kill") and ok:
            m.down(ev.n, ev.window, self.stage.name(ev.target))
        elif name in ("start", "heal") and ok:
            for window in ev.closes:
                if window not in self.stage.open:
                    m.cleared(ev.n, window)
        elif name == "partition" and ok:
            others = [self.stage.name(n) for n in str(ev.params.get("others", "")).split(",")
                      if n]
            m.partitioned(ev.n, ev.window, ev.params["shape"],
                          self.stage.name(ev.target).split(","), others)
        elif name == "churn-add" and ok and o.node is not None:
            m.churn_added(ev.n, ev.window, *o.node)
            self.churned[ev.window] = o.node[0]
        elif name == "churn-remove" and ok:
            m.churn_removed(ev.n, ev.window, self.stage.name(ev.target))
        elif name == "gateway-add" and ev.target in self.stage.gateways:
            m.gateway_added(ev.n, ev.target, self.stage.gateway_payers[ev.target])
        elif name == "gateway-remove" and ev.target not in self.stage.gateways:
            m.gateway_removed(ev.n, ev.target)
        elif name in ("deposit", "withdraw", "rates") and o.status != "fail":
            sure = ok
            if name == "rates":
                m.rates_set(ev.n, int(ev.params["message_fee"]), sure)
                return
            address = payer_key(int(ev.target.removeprefix("payer-"))).address
            if name == "deposit":
                m.deposited(ev.n, address, int(ev.params["amount"]), sure)
            else:
                m.withdrawal_requested(ev.n, address, int(ev.params["amount"]), sure)

    # --- checkpoints ---------------------------------------------------------------------

    def checkpoint(self, event: int, final: bool = False) -> Checkpoint:
        prediction = self.model.predict()
        payers = sorted({*prediction.deposits, *prediction.withdrawals,
                         *self.model.payers.values(), *self.stage.gateway_payers.values()})
        history = self.run_.history
        k = len(self.checkpoints) + 1
        op = history.invoke("checkpoint", n=k, event=event, final=final)
        cp, snap = poll_checkpoint(
            k=k, event=event, final=final, prediction=prediction,
            take=lambda: self.stage.snapshotter.take(history.now(), payers,
                                                     dict(self.stage.gateways)),
            previous=dict(self.previous), settle_s=self.spec.settle_s,
            run_dir=self.run_.result.run_dir, stop_on=self.spec.stop_on)
        self.previous.update({n: v for n, v in snap.nodes.items() if v.readable})
        self.checkpoints.append(cp)
        history.complete("checkpoint", op, "fail" if cp.mismatches else "ok", n=k, event=event,
                         final=final, waited_s=cp.waited_s, polls=cp.polls, snapshot=cp.dump,
                         mismatches=[m.to_json() for m in cp.mismatches[:20]])
        verdict = "agrees" if not cp.mismatches else f"{len(cp.mismatches)} mismatches: " + \
            cp.messages()[0]
        self.say(f"{cp.label}: {verdict} ({cp.polls} snapshots, {cp.waited_s:.1f}s)")
        return cp

    def final_heal(self) -> None:
        """Clear every open window newest first; churned-in nodes leave last, once every
        canonical node holds what they acknowledged (bounded by the settle deadline)."""
        last = max((o.event.n for o in self.outcomes), default=0)
        windows = list(reversed(self.stage.open))
        for window in [w for w in windows if w not in self.churned]:
            self._clear(window, last, "final heal")
        joined = [w for w in windows if w in self.churned]
        if joined:
            self._await_churned(last)
        for window in joined:
            self._clear(window, last, "final heal")
        self.model.final_heal()

    def _await_churned(self, last: int) -> None:
        ids = {self.model.nodes[n] for n in self.churned.values()}
        wanted: dict[int, int] = {}
        for o, s in self.model.acked:
            if o in ids:
                wanted[o] = max(wanted.get(o, 0), s)
        readers = sorted(self.model.up())

        def clocks() -> dict[str, dict[int, int]]:
            return {n: dict(self.stage.snapshotter.read_node(n).clock) for n in readers}

        try:
            wait_for(clocks, lambda seen: all(c.get(o, 0) >= s for c in seen.values()
                                              for o, s in wanted.items()),
                     timeout=self.spec.settle_s, interval=0.5,
                     what="churned-in nodes' envelopes on every node")
        except TimeoutExpired as e:
            self.say(f"{e}; the final checkpoint will show what is missing")

    def finish(self) -> list[Checkpoint]:
        """Every checkpoint, with the final one taken (once) after the settle."""
        reproduced = self.spec.stop_on and any(m.property == self.spec.stop_on
                                               for cp in self.checkpoints for m in cp.mismatches)
        if self._final is None and not reproduced:
            last = max((o.event.n for o in self.outcomes), default=0)
            self._final = self.checkpoint(last, final=True)
            self.stage.snapshotter.close()
        return list(self.checkpoints)

    def summary(self) -> dict[str, Any]:
        return {"scheduled": len(self.schedule.events), "ran": len(self.outcomes),
                "unsure": sum(o.status == "unsure" for o in self.outcomes),
                "failed": list(self.errors), "cut_short": self.cut_short,
                "checkpoints": len(self.checkpoints),
                "acked": len(self.model.acked), "unsure_envelopes": len(self.model.unsure)}
