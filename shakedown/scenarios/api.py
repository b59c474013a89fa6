"""Scenarios as data: topology, workload, fault schedule and expectations; the runner acts.

A scenario never deploys, injects or heals by itself: the runner owns that lifecycle (clear
leftovers -> deploy -> workload and faults -> final heal -> settle -> checks -> report ->
teardown). Times in a scenario are seconds from the start of the workload.

    SCENARIO = Scenario(
        name="chaos-latency",
        description="500 ms on node-200's proxy under traffic; delivery continues, lag recovers",
        topology=Topology(nodes=3, gateways=1),
        workload=(Publish(rate=20, duration_s=14),),
        faults=(At(4, Latency("node-200", ms=500), hold_s=6),),
        expect=(ReplicatesDuring("latency@node-200"), Converges(within_s=15)),
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shakedown.scenarios.agents import Agent

if TYPE_CHECKING:  # expectations import this module for its types; avoid the cycle at runtime
    import random

    from shakedown.scenarios.expectations import Expectation
    from shakedown.scenarios.history import History
    from shakedown.scenarios.workload import Publisher, Router

VIAS = ("node", "gateway")
NODE_ACTIONS = ("node-join", "node-leave", "node-env")  # shakedown.scenarios.nodes
ACTIONS = ("gateway-add", "gateway-remove", "rates-set", "verify", *NODE_ACTIONS)
RATE_PARAMS = ("message_fee", "storage_fee", "congestion_fee", "target_rate", "start_in_s")


@dataclass(frozen=True)
class Topology:
    """What to deploy. ``chaos`` puts faults in reach; ``node_env`` switches node behaviour.

    Args:
        nodes: refnode nodes (ids 100, 200, ...).
        gateways: 0 or 1 deployed gateway; scenarios add more with ``Action("gateway-add")``.
        chaos: False refuses any fault schedule (the proxy stays, but carries no toxics).
        images: image overrides by role (node, anvil, postgres, toxiproxy).
        node_env: extra environment per node id, e.g. ``{300: {"REFNODE_SYNC_ENABLED": "0"}}``.
    """

    nodes: int = 3
    gateways: int = 1
    chaos: bool = True
    images: Mapping[str, str] = field(default_factory=dict)
    node_env: Mapping[int, Mapping[str, str]] = field(default_factory=dict)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(f"node-{(k + 1) * 100}" for k in range(self.nodes))


@dataclass(frozen=True)
class Publish:
    """Publish envelopes at ``rate``/s for ``duration_s`` from ``start_s``; every ack is kept.

    Args:
        via: "node" publishes straight to nodes (signing as one of ``payers``); "gateway"
            sends unsigned envelopes through the live gateways, which pay.
        to: node names to publish to (or, via gateway, to ask the gateway for); () means every
            node, or the gateway's own choice.
        batch: envelopes per publish call; workers: concurrent publishers.
    """

    rate: float = 20.0
    duration_s: float = 10.0
    start_s: float = 0.0
    batch: int = 5
    payers: int = 2
    via: str = "node"
    to: tuple[str, ...] = ()
    workers: int = 1
    max_envelopes: int = 50_000
    label: str = "publish"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Ramp:
    """Load progression: publish at each rate for ``step_s``; stop at the first rate that is
    not sustained (acked below ``min_ratio`` of the rate, any failure, or replication not
    caught up within ``catch_up_s`` after the step). The last sustained rate is reported."""

    rates: tuple[float, ...] = (5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800)
    step_s: float = 3.0
    catch_up_s: float = 3.0
    min_ratio: float = 0.9
    start_s: float = 0.0
    payers: int = 2
    via: str = "node"
    to: tuple[str, ...] = ()
    workers: int = 2
    label: str = "ramp"

    @property
    def end_s(self) -> float:
        """The longest the ramp can last (every step run, every catch-up used)."""
        return self.start_s + len(self.rates) * (self.step_s + self.catch_up_s)


class CustomWorkload:
    """A workload that builds its own publisher (``shakedown.scenarios.propagation``).
    Subclasses are frozen dataclasses with ``label``, ``start_s`` and ``end_s``; ``rng`` is
    drawn from the run's seed and the label, so the same seed gives the same shape."""

    label: str
    start_s: float

    @property
    def end_s(self) -> float:
        raise NotImplementedError

    def publisher(self, router: Router, history: History, rng: random.Random) -> Publisher:
        raise NotImplementedError


# Agent: adversaries and watchers (agents.py); CustomWorkload: its own publisher
Workload = Publish | Ramp | Agent | CustomWorkload


@dataclass(frozen=True)
class Fault:
    """One fault for the injector: ``kind`` on ``target`` with ``params`` (see shakedown.faults)."""

    kind: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.target}"


@dataclass(frozen=True)
class Action:
    """A scheduled operation that is not a fault, recorded in the history like one:
    ``gateway-add`` / ``gateway-remove`` (target: the gateway), ``rates-set`` (target
    ``chain``: new rates in the RateRegistry), ``verify`` (run verify checks now and record
    what they flag)."""

    kind: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.target}"


@dataclass(frozen=True)
class At:
    """Apply ``what`` at ``at_s``; a fault is cleared after ``hold_s`` (None: at the final heal)."""

    at_s: float
    what: Fault | Action
    hold_s: float | None = None


@dataclass(frozen=True)
class Between:
    """Randomized chaos in the Logos way: from ``start_s`` until ``until_s`` (None: the end of
    the workload), wait uniform(``min_delay_s``, ``max_delay_s``), then apply one of ``faults``
    whose target is neither faulted now nor cleared less than ``cooldown_s`` ago, for
    ``hold_s``. The seed fixes every choice."""

    faults: tuple[Fault, ...]
    min_delay_s: float
    max_delay_s: float
    hold_s: float
    cooldown_s: float = 0.0
    start_s: float = 0.0
    until_s: float | None = None


ScheduleItem = At | Between


@dataclass(frozen=True)
class Scenario:
    """Name, topology, workload, fault schedule and expectations; ``steps`` is its docstring.

    The runner adds the history set checker and the verify suite to ``expect``; ``settle_s``
    bounds the wait for convergence after the final heal.
    """

    name: str
    description: str
    topology: Topology = field(default_factory=Topology)
    workload: tuple[Workload, ...] = (Publish(),)
    faults: tuple[ScheduleItem, ...] = ()
    expect: tuple[Expectation, ...] = ()
    settle_s: float = 20.0
    steps: str = ""
    tags: tuple[str, ...] = ()
    chaos: Any = None  # a shakedown.chaos.engine.ChaosSpec: run by the chaos engine instead
    verify_args: tuple[str, ...] = ()  # extra ``pytest verify/`` options, e.g. --canonical=...

    @property
    def workload_end_s(self) -> float:
        return max((w.end_s for w in self.workload), default=0.0)


# --- fault builders: read like the fault, return plain data ---------------------------------

def Latency(target: str, ms: int, jitter_ms: int = 0) -> Fault:
    return Fault("latency", target, {"latency_ms": ms, "jitter_ms": jitter_ms})


def Bandwidth(target: str, kbps: int) -> Fault:
    return Fault("bandwidth", target, {"rate_kbps": kbps})


def ResetPeer(target: str, timeout_ms: int = 0) -> Fault:
    return Fault("reset-peer", target, {"timeout_ms": timeout_ms})


def Blackhole(target: str) -> Fault:
    return Fault("blackhole", target)


def Partition(target: str, others: str) -> Fault:
    return Fault("partition", target, {"others": others})


def Stop(target: str) -> Fault:
    return Fault("stop", target)


def Kill(target: str) -> Fault:
    return Fault("kill", target)


def AddGateway(name: str) -> Action:
    return Action("gateway-add", name)


def RemoveGateway(name: str) -> Action:
    return Action("gateway-remove", name)


def SetRates(start_in_s: float = 5.0, **fees: int) -> Action:
    """Append rates to the RateRegistry, in force ``start_in_s`` after the action (by the
    nodes' clocks); unnamed fields keep their current values.

        SetRates(start_in_s=4, message_fee=5000, storage_fee=3)
    """
    return Action("rates-set", "chain", {"start_in_s": start_in_s, **fees})


def NodeJoin(name: str, **env: str) -> Action:
    """A node with a fresh identity joins for good (registered, its own database, started,
    canonical); ``name`` is the node the registry assigns next, e.g. ``node-400``."""
    return Action("node-join", name, {"env": env})


def NodeLeave(name: str) -> Action:
    """The node leaves for good: out of the canonical set once its envelopes are replicated;
    it keeps running, so a node that still followed it would show it."""
    return Action("node-leave", name)


def NodeEnv(name: str, **env: str) -> Action:
    """Redeploy ``name`` with these environment variables changed (``shakedown up`` with the
    run's inventory edited): how an operator turns a node setting on or off."""
    return Action("node-env", name, {"env": env})


def VerifyNow(label: str, *args: str) -> Action:
    """Run ``pytest verify/ ARGS`` against the live testnet now, recording what it flags
    (it is expected to flag something: the run goes on either way).

        VerifyNow("stuck", "-m", "payer", "-k", "stuck", "--report-stuck-after=4")
    """
    return Action("verify", label, {"args": list(args)})
