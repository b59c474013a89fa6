"""Drive a deployed run: start the workload, play the fault schedule, heal, settle, observe.

Everything lands in the history: workload start and end, each fault's apply and clear (with
its window name), each action, the final heal, the settle wait, node health, chain reads.
Waiting for a scheduled time uses the stop event; waiting for a state polls it to a deadline.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shakedown.client import GatewayClient, NodeClient
from shakedown.errors import ShakedownError, TimeoutExpired
from shakedown.ports import free_port
from shakedown.scenarios.actions import set_rates, verify_now
from shakedown.scenarios.agents import Agent, AgentContext, run_agent
from shakedown.scenarios.api import (
    NODE_ACTIONS,
    Action,
    CustomWorkload,
    Fault,
    Publish,
    Ramp,
    Scenario,
)
from shakedown.scenarios.history import History
from shakedown.scenarios.probe import Probe
from shakedown.scenarios.provision import RunTestnet
from shakedown.scenarios.schedule import Planned
from shakedown.scenarios.workload import Publisher, Router, publisher_for, run_ramp
from shakedown.traffic import NodeTarget
from shakedown.waiting import wait_for

Say = Callable[[str], None]
TTL_MARGIN_S = 300.0  # a fault outlives its planned clear by this much at most, even if we die


@dataclass
class Driver:
    """One run's moving parts; ``injector`` is None when the schedule has no faults."""

    scenario: Scenario
    net: RunTestnet
    record: dict[str, Any]
    history: History
    probe: Probe
    injector: Any
    say: Say
    stop: threading.Event = field(default_factory=threading.Event)
    router: Router = field(init=False)
    open_faults: dict[str, Any] = field(default_factory=dict)   # window -> ledger entry
    fault_errors: list[str] = field(default_factory=list)
    publishers: list[Publisher] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _gateways: dict[str, str] = field(default_factory=dict)     # name -> endpoint
    t0: float = 0.0
    seed: int = 0  # the run's seed: custom workloads draw their shape from it

    def __post_init__(self) -> None:
        nodes = {n["name"]: NodeTarget(n["grpc"], int(n["node_id"])) for n in self.record["nodes"]}
        self.router = Router(nodes)
        gateway = self.record.get("gateway")
        if gateway:
            self.router.add_gateway("gateway", gateway["grpc"])
            self._gateways["gateway"] = gateway["grpc"]

    @property
    def node_ids(self) -> dict[str, int]:
        return {n["name"]: int(n["node_id"]) for n in self.record["nodes"]}

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every deployed gateway answers health (the deploy waits for nodes only)."""
        for name, endpoint in self._gateways.items():
            wait_for(partial(_gateway_serving, endpoint), bool, timeout=timeout_s, interval=0.2,
                     what=f"{self.net.name}-{name} health")

    # --- workload and schedule ----------------------------------------------------------------

    def run_workload(self, schedule: tuple[Planned, ...]) -> None:
        """Start each workload item at its time, play the schedule, wait for the workload."""
        steps: list[tuple[float, int, str, Callable[[], None]]] = []
        for item in self.scenario.workload:
            steps.append((item.start_s, 0, f"start {item.label}", self._starter(item)))
        for p in schedule:
            if isinstance(p.what, Action):
                steps.append((p.at_s, 2, p.window, partial(self.act, p)))
                continue
            steps.append((p.at_s, 2, f"apply {p.window}", partial(self.apply, p)))
            if p.clear_s is not None:
                steps.append((p.clear_s, 1, f"clear {p.window}", partial(self.clear, p.window)))
        steps.sort(key=lambda s: (s[0], s[1]))
        self.t0 = time.monotonic()
        self.history.info("phase", phase="workload", state="start")
        for at_s, _, _, step in steps:
            if self.stop.wait(max(0.0, at_s - self.elapsed())):
                break
            step()
        self._join()
        stats = [p.stats for p in self.publishers]
        self.history.info("phase", phase="workload", state="end",
                          sent=sum(s.sent for s in stats), acked=sum(s.acked for s in stats),
                          failed=sum(s.failed for s in stats))
        self.say(f"workload done at t={self.elapsed():.1f}s: {sum(s.acked for s in stats)} acked, "
                 f"{sum(s.failed for s in stats)} not acked")

    def _starter(self, item: Publish | Ramp | Agent | CustomWorkload) -> Callable[[], None]:
        def start() -> None:
            if isinstance(item, Agent):
                ctx = AgentContext(self.record, self.history, self.stop, self.elapsed, self.say)
                agent = threading.Thread(target=run_agent, args=(item, ctx), name=item.label,
                                         daemon=True)
                agent.start()
                self._threads.append(agent)
                return
            if isinstance(item, CustomWorkload):
                pub = item.publisher(self.router, self.history,
                                     random.Random(f"{self.seed}:{item.label}"))
                pub.start()
                self.publishers.append(pub)
                self.say(f"t={self.elapsed():.1f}s {item.label} started")
                return
            if isinstance(item, Publish):
                pub = publisher_for(item, self.router, self.history)
                pub.start()
                self.publishers.append(pub)
                self.say(f"t={self.elapsed():.1f}s publish {item.rate:g}/s for "
                         f"{item.duration_s:g}s via {item.via} ({item.label})")
                return
            thread = threading.Thread(target=run_ramp, name="ramp", daemon=True, args=(
                item, self.router, self.history, self._caught_up, self.stop, self.say,
                self.publishers.append))
            thread.start()
            self._threads.append(thread)
        return start

    def _join(self) -> None:
        for thread in self._threads:
            while thread.is_alive() and not self.stop.is_set():
                thread.join(timeout=0.5)
        for pub in self.publishers:
            if self.stop.is_set():
                pub.stop()
            pub.wait()

    def _caught_up(self, wanted: dict[int, int], timeout_s: float) -> bool:
        try:
            wait_for(self.probe.sample, lambda s: _all_hold(s, wanted), timeout=timeout_s,
                     interval=0.1, what="replication")
            return True
        except TimeoutExpired:
            return False

    def halt(self) -> None:
        """Stop publishing and waiting at once (Ctrl-C, or a failure elsewhere)."""
        self.stop.set()
        for pub in self.publishers:
            pub.stop()

    # --- faults -------------------------------------------------------------------------------

    def apply(self, p: Planned) -> None:
        fault = p.what
        assert isinstance(fault, Fault)
        end = p.clear_s if p.clear_s is not None else self.scenario.workload_end_s
        ttl = max(1.0, end - p.at_s) + self.scenario.settle_s + TTL_MARGIN_S
        op = self.history.invoke("fault", window=p.window, kind=fault.kind, target=fault.target,
                                 params=dict(fault.params), planned_s=p.at_s)
        try:
            entry = self.injector.apply(fault.kind, fault.target, dict(fault.params), ttl=ttl)
        except ShakedownError as e:
            self.history.complete("fault", op, "fail", error=str(e))
            self.fault_errors.append(f"{p.window}: {e}")
            self.say(f"t={self.elapsed():.1f}s apply {p.window} FAILED: {e}")
            return
        self.open_faults[p.window] = entry
        self.history.complete("fault", op, "ok", entry=entry.id, tag=entry.tag)
        self.say(f"t={self.elapsed():.1f}s applied {p.window}")

    def clear(self, window: str) -> None:
        entry = self.open_faults.pop(window, None)
        if entry is None:
            return
        op = self.history.invoke("heal", window=window)
        try:
            self.injector.clear(entry)
        except ShakedownError as e:
            self.history.complete("heal", op, "fail", window=window, error=str(e))
            self.fault_errors.append(f"clear {window}: {e}")
            self.say(f"t={self.elapsed():.1f}s clear {window} FAILED: {e}")
            return
        self.history.complete("heal", op, "ok", window=window)
        self.say(f"t={self.elapsed():.1f}s cleared {window}")

    def heal(self) -> None:
        """The final heal: clear every open window, then everything the ledgers still hold."""
        self.history.info("phase", phase="heal", state="start")
        for window in list(self.open_faults):
            self.clear(window)
        if self.injector is not None:
            op = self.history.invoke("heal", window="*")
            cleared = self.injector.clear_all()
            self.history.complete("heal", op, "ok", window="*", cleared=len(cleared))
        self.history.info("phase", phase="heal", state="end")

    # --- actions ------------------------------------------------------------------------------

    def act(self, p: Planned) -> None:
        """Run one action; a ``verify`` action runs beside the schedule (it takes seconds)."""
        action = p.what
        assert isinstance(action, Action)
        if action.kind == "verify":
            thread = threading.Thread(target=self._act, args=(p,), name=p.window, daemon=True)
            thread.start()
            self._threads.append(thread)
            return
        self._act(p)

    def _act(self, p: Planned) -> None:
        action = p.what
        assert isinstance(action, Action)
        op = self.history.invoke("action", kind=action.kind, target=action.target,
                                 window=p.window, params=dict(action.params))
        facts: dict[str, Any] = {}
        try:
            if action.kind == "gateway-add":
                self._add_gateway(action.target)
            elif action.kind == "gateway-remove":
                self._remove_gateway(action.target)
            elif action.kind == "rates-set":
                facts = set_rates(self.record, dict(action.params))
            elif action.kind in NODE_ACTIONS:
                from shakedown.scenarios.nodes import perform

                facts = perform(self, action)
            else:
                facts = verify_now(self.net.inventory, self.net.inventory.parent, action.target,
                                   list(action.params.get("args", [])))
        except ShakedownError as e:
            self.history.complete("action", op, "fail", window=p.window, error=str(e))
            self.fault_errors.append(f"{p.window}: {e}")
            self.say(f"t={self.elapsed():.1f}s {p.window} FAILED: {e}")
            return
        self.history.complete("action", op, "ok", kind=action.kind, target=action.target,
                              window=p.window, **facts)
        self.say(f"t={self.elapsed():.1f}s {p.window}")

    def _add_gateway(self, name: str) -> None:
        endpoint = self.net.start_gateway(name, len(self._gateways), free_port())
        wait_for(partial(_gateway_serving, endpoint), bool, timeout=30, interval=0.2,
                 what=f"{name} health")
        self._gateways[name] = endpoint
        self.router.add_gateway(name, endpoint)

    def _remove_gateway(self, name: str) -> None:
        endpoint = self._gateways.get(name)
        if endpoint is None:
            raise ShakedownError(f"no gateway {name!r}; live: {', '.join(self._gateways)}")
        self.router.remove_gateway(name)
        if not self.router.drain(endpoint, timeout_s=15):
            raise ShakedownError(f"{name}: calls still in flight after 15s")
        self.net.remove_gateway(name)
        del self._gateways[name]

    # --- after the workload -------------------------------------------------------------------

    def canonical(self) -> dict[str, int]:
        """Canonical nodes, read from the NodeRegistry (recorded as a chain call)."""
        from shakedown.chain.ops import Chain
        from shakedown.chain.records import ContractAddresses
        from shakedown.keys import admin_account

        op = self.history.invoke("chain", call="canonical_node_ids")
        try:
            chain = Chain.connect(self.record["chain"]["rpc"],
                                  ContractAddresses.from_dict(self.record["contracts"]),
                                  admin_account())
            ids = chain.canonical_node_ids()
        except Exception as e:
            self.history.complete("chain", op, "fail", error=f"{type(e).__name__}: {e}")
            return self.node_ids  # the inventory's nodes: better than nothing to check
        self.history.complete("chain", op, "ok", value=ids)
        return {name: i for name, i in self.node_ids.items() if i in ids}

    def settle(self, nodes: dict[str, int]) -> None:
        """Wait until every canonical node holds every acked envelope and clocks are equal."""
        wanted: dict[int, int] = {}
        for pub in self.publishers:
            for ack in pub.stats.acks:
                wanted[ack.originator_node_id] = max(wanted.get(ack.originator_node_id, 0),
                                                     ack.sequence_id)
        op = self.history.invoke("settle", wanted={str(k): v for k, v in wanted.items()})
        started = time.monotonic()
        try:
            wait_for(self.probe.sample, lambda s: _converged(s, list(nodes), wanted),
                     timeout=self.scenario.settle_s, interval=0.2, what="convergence")
        except TimeoutExpired as e:
            self.history.complete("settle", op, "fail", after_s=self.scenario.settle_s,
                                  error=str(e)[:500])
            self.say(f"not converged within {self.scenario.settle_s:g}s")
            return
        after = time.monotonic() - started
        self.history.info("sample", nodes=self.probe.sample())  # the converged state itself
        self.history.complete("settle", op, "ok", after_s=round(after, 3))
        self.say(f"converged {after:.1f}s after the heal")

    def health(self, nodes: dict[str, int]) -> None:
        op = self.history.invoke("health")
        found: dict[str, str] = {}
        for node in self.record["nodes"]:
            if node["name"] not in nodes:
                continue
            try:
                with NodeClient(node["grpc"], timeout=3) as client:
                    found[node["name"]] = "serving" if client.health().serving else "not serving"
            except Exception as e:
                found[node["name"]] = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
        self.history.complete("health", op, "ok", nodes=found)


def _gateway_serving(endpoint: str) -> bool:
    with GatewayClient(endpoint, timeout=2) as client:
        return bool(client.health().serving)


def _all_hold(sample: dict[str, dict[str, Any]], wanted: dict[int, int]) -> bool:
    return all("clock" in s and all(s["clock"].get(str(o), 0) >= q for o, q in wanted.items())
               for s in sample.values())


def _converged(sample: dict[str, dict[str, Any]], nodes: list[str],
               wanted: dict[int, int]) -> bool:
    picked = {n: sample.get(n, {}) for n in nodes}
    if not _all_hold(picked, wanted):
        return False
    clocks = [s["clock"] for s in picked.values()]
    return all(c == clocks[0] for c in clocks)
