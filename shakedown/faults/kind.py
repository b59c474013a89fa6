"""A fault kind, defined once for both runtimes: parameters, targets, and its plan as data.

A kind's planner sees the testnet through a ``View`` (what the runtime answers: its services,
where traffic toward a peer goes, which device, where the toxiproxy is) and returns a ``Plan``
whose steps are plain data. The executors turn steps into commands: nsenter and the Docker API
on a Docker host (``shakedown.faults.docker``), shell over SSH on a VM
(``shakedown.faults.hosts``). The steps:

    sh            at, cmd[, precheck]     shell in the network namespace of a place
    service       at, unit, action        stop, start, kill, pause, unpause, restart
    clock         at, unit, offset_s      the service restarts with its clock offset_s off
    unclock       at, unit                ...and runs on the real clock again
    toxic_add     at, api, proxy, name, type, stream, toxicity, attributes
    toxic_remove  at, api, proxy, name
    rpc           at, url, method, params a JSON-RPC call to the chain
    reorg         url, depth, keep_txs    (the controller; Docker only:) canonical, churn

``at`` is a place the executor knows: a container on a Docker host, a host over SSH; "" is
the controller itself. A precheck exits ``REFUSED`` (3) with one line before anything changes.

    values = KINDS["partition"].parse({"others": "node-200"}, "docker")
    plan = KINDS["partition"].plan(view, view.resolve("node-100"), values, tag="1a2b3c4d")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shakedown.errors import ConfigError

RUNTIMES = ("docker", "ssh")
WHERE = {"docker": "a Docker host", "ssh": "an SSH host"}
Step = dict[str, Any]
Action = Step | Callable[[], None]  # apply steps may run in-process; undo steps are data


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default (None = required), bounds, and the runtimes that take
    it (``("ssh",)``: only on SSH hosts, e.g. a device name)."""

    type: type = float
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = RUNTIMES

    def parse(self, name: str, raw: Any) -> Any:
        if isinstance(raw, bool) or (self.type is int and isinstance(raw, float)
                                     and not raw.is_integer()):
            raise ConfigError(f"{name}={raw!r}: expected a {self.type.__name__}")
        try:
            value = self.type(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={raw!r}: expected a {self.type.__name__}") from None
        if self.choices and value not in self.choices:
            raise ConfigError(f"{name}={value!r}: choose one of {', '.join(self.choices)}")
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise ConfigError(f"{name}={value}: must be within {self.low}-{self.high}")
        return value


@dataclass(frozen=True)
class Service:
    """What a fault aims at: a service (node, chain, db, proxy, gateway), a whole host, or the
    network (what churn joins). ``at`` is the place of its processes and network namespace;
    ``unit`` its systemd unit on an SSH host."""

    name: str
    role: str
    at: str = ""
    node_id: int | None = None
    unit: str = ""


@dataclass(frozen=True)
class Plan:
    apply: Sequence[Action]
    undo: list[Step]
    mechanism: str
    instant: bool = False  # nothing stays behind to clear (restart, reorg)
    notes: dict[str, Any] = field(default_factory=dict)


class View(Protocol):
    """A runtime's answers to the questions a planner asks."""

    @property
    def runtime(self) -> str: ...

    @property
    def nodes(self) -> list[Service]: ...

    def resolve(self, spec: str, roles: tuple[str, ...] = ()) -> list[Service]:
        """The services ``spec`` names (``node-200``, ``a,b``, ``nodes``); ConfigError."""

    def toward(self, src: Service, dest: Service) -> list[tuple[str, int]]:
        """(address, TCP port or 0) of the packets ``src`` sends toward ``dest``."""

    def inbound(self, service: Service) -> list[list[str]]:
        """iptables matches that cut ``service`` off from its clients, either way."""

    def keep(self, service: Service, values: Mapping[str, Any]) -> list[list[str]]:
        """Rules that come first and keep the controller's way in (SSH on a host)."""

    def device(self, service: Service, addresses: list[str]) -> str:
        """The network device toward ``addresses`` (all of them) in the service's place."""

    def free_class(self, service: Service, device: str) -> int:
        """An htb class of ours on ``device`` that nothing uses yet."""

    def has_netem(self, service: Service) -> bool: ...

    def toxiproxies(self, service: Service, path: str) -> list[tuple[str, str, str]]:
        """(at, API url as seen from there, proxy) of the proxies on ``path`` (``node``,
        ``db``, ``chain``) in front of ``service``."""

    def chain_rpc(self) -> tuple[str, str]:
        """(at, url): where the chain's JSON-RPC is called from, and its address there."""

    def controller_rpc(self) -> str:
        """The chain's JSON-RPC as this controller reaches it."""


Planner = Callable[[View, list[Service], dict[str, Any], str], Plan]


@dataclass(frozen=True)
class Kind:
    """A fault kind: what it does, on which roles, with which parameters, on which runtimes."""

    name: str
    summary: str
    roles: tuple[str, ...]
    planner: Planner
    params: Mapping[str, Param] = field(default_factory=dict)
    default_target: str = ""
    runtimes: tuple[str, ...] = RUNTIMES

    def supported(self, runtime: str) -> None:
        """ConfigError in one line when this kind does not exist on ``runtime``."""
        if runtime not in self.runtimes:
            only = " and ".join(WHERE[r] for r in self.runtimes)
            docker = "acts on Docker testnets: " if self.runtimes == ("docker",) else ""
            raise ConfigError(f"{self.name} {docker}it needs {only}; the target is on "
                              f"{WHERE[runtime]}")

    def params_on(self, runtime: str) -> dict[str, Param]:
        return {n: p for n, p in self.params.items() if runtime in p.runtimes}

    def parse(self, raw: Mapping[str, Any] | None, runtime: str = "docker") -> dict[str, Any]:
        """Typed values for every parameter ``runtime`` takes; ConfigError for unknown,
        missing or bad ones, and for one that only the other runtime takes."""
        raw = dict(raw or {})
        mine = self.params_on(runtime)
        for name in sorted(set(raw) - set(mine)):
            if name in self.params:
                where = " or ".join(WHERE[r] for r in self.params[name].runtimes)
                raise ConfigError(f"{self.name}: {name}= needs {where}; the target is on "
                                  f"{WHERE[runtime]}")
            known = ", ".join(mine) or "none"
            raise ConfigError(f"{self.name}: unknown parameter {name!r}; known: {known}")
        values = {}
        for name, param in mine.items():
            if name in raw:
                values[name] = param.parse(name, raw[name])
            elif param.default is None:
                raise ConfigError(f"{self.name}: missing parameter {name}=...")
            else:
                values[name] = param.default
        return values

    def plan(self, view: View, services: list[Service], values: dict[str, Any],
             tag: str) -> Plan:
        return self.planner(view, services, values, tag)
