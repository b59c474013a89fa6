"""Faults on a Docker testnet: its view (services found by label) and its executor.

A target is a service (``node-200``, ``chain``, ``db``, ``proxy``, ``gateway``), a comma list,
or ``nodes``; a node that churn added is one too. Nodes dial their peers through the proxy
(``proxy:10000+id``), so inside node-100's namespace "toward node-200" is TCP to the proxy's
address on port 10200 plus anything sent to node-200's own address. Connections a peer opened
to a node arrive from the proxy for every peer alike: they are cut or shaped at their source.

The executor runs the steps here (``shakedown.faults.ops``); the host's ledger is this
machine's (``/var/lib/shakedown/faults/<testnet>.json``); a TTL is a detached process that
undoes the entry at its expiry (``shakedown.faults.expire``).

    backend = DockerBackend.of(testnet)
    Injector(backend).apply("latency", "node-200", {"latency_ms": 200}, ttl=60)
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shakedown.deploy.docker import LABEL_SERVICE, LABEL_TESTNET
from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, FaultError, NotFoundError, ShakedownError
from shakedown.faults import netshell
from shakedown.faults.kind import Kind, Plan, Service, Step
from shakedown.faults.ledger import Entry, Ledger, host_ledger_dir
from shakedown.faults.names import TC_HANDLE
from shakedown.faults.ops import CLOCK_LABEL, container_pid, engine, in_netns, run_step
from shakedown.model import NODE_PORT, PROXY_LISTEN_BASE, Testnet
from shakedown.toxiproxy import ToxiproxyClient

DEVICE = "eth0"


@dataclass(frozen=True)
class DockerView:
    """The services of a deployed testnet and the endpoints faults talk to from here."""

    testnet: Testnet
    record: dict[str, Any]
    services: tuple[Service, ...]
    addresses: dict[str, str]  # service -> address on the testnet network (running ones)
    runtime: str = "docker"

    @classmethod
    def of(cls, testnet: Testnet, record: dict[str, Any]) -> DockerView:
        """One listing call (no per-container inspect), so applying a fault stays quick."""
        label = {"label": f"{LABEL_TESTNET}={testnet.name}"}
        found, addresses = [], {}
        for c in engine().api.containers(all=True, filters=label):
            name, service = c["Names"][0].lstrip("/"), c["Labels"].get(LABEL_SERVICE, "")
            if not service or name != testnet.container(service):
                continue  # e.g. an original kept aside by a clock skew
            node_id = int(service[5:]) if service.startswith("node-") else None
            found.append(Service(service, "node" if node_id else service, name, node_id))
            network = (c.get("NetworkSettings") or {}).get("Networks", {}).get(testnet.network)
            if network and network.get("IPAddress"):
                addresses[service] = network["IPAddress"]
        found.append(Service("network", "network"))  # what churn-add joins
        found.sort(key=lambda s: (s.role != "node", s.node_id or 0, s.name))
        return cls(testnet, record, tuple(found), addresses)

    @property
    def nodes(self) -> list[Service]:
        return [s for s in self.services if s.role == "node"]

    def resolve(self, spec: str, roles: tuple[str, ...] = ()) -> list[Service]:
        by_name = {s.name: s for s in self.services}
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise ConfigError("empty target; name a service such as node-100")
        picked: list[Service] = []
        for name in names:
            group = self.nodes if name == "nodes" else [by_name.get(name)]
            if None in group:
                known = ", ".join(["nodes", *by_name]) or "(nothing deployed)"
                raise ConfigError(f"unknown target {name!r} in testnet {self.testnet.name}; "
                                  f"known: {known}")
            for service in group:
                assert service is not None
                if roles and service.role not in roles:
                    allowed = ", ".join(r for r in roles if r not in ("host", "service"))
                    raise ConfigError(f"target {service.name} is a {service.role}; this fault "
                                      f"applies to: {allowed}")
                if service not in picked:
                    picked.append(service)
        return picked

    def ip(self, service: str) -> str:
        """The service's address on the testnet network; ConfigError when it has none."""
        if service not in self.addresses:
            raise ConfigError(f"{self.testnet.container(service)} is not running on "
                              f"{self.testnet.network}; start it first ('shakedown up')")
        return self.addresses[service]

    def toward(self, src: Service, dest: Service) -> list[tuple[str, int]]:
        if dest.node_id is None:
            raise ConfigError(f"{dest.name} is not a node")
        found = [(self.ip("proxy"), PROXY_LISTEN_BASE + dest.node_id)]
        if dest.name in self.addresses:
            found.append((self.addresses[dest.name], 0))
        return found

    def inbound(self, service: Service) -> list[list[str]]:
        """Connections the proxy opened to this node's API (peers, the gateway), either way."""
        proxy, port = self.ip("proxy"), str(NODE_PORT)
        return [["-s", proxy, "-p", "tcp", "--dport", port, "-j", "DROP"],
                ["-d", proxy, "-p", "tcp", "--sport", port, "-j", "DROP"]]

    def keep(self, service: Service, values: Any) -> list[list[str]]:
        return []  # the controller reaches containers through the engine, not their network

    def device(self, service: Service, addresses: list[str]) -> str:
        return DEVICE

    def free_class(self, service: Service, device: str) -> int:
        used = netshell.classes_in(in_netns(service.at, ["tc", "class", "show", "dev", device]))
        return netshell.free_minor(used, service.name)

    def has_netem(self, service: Service) -> bool:
        return netem_available(container_pid(service.at))

    def toxiproxies(self, service: Service, path: str) -> list[tuple[str, str, str]]:
        api = str(self.record["proxy"]["api"])
        if service.role == "node" and path != "chain":
            return [("", api, f"{service.name}-db" if path == "db" else service.name)]
        if service.role == "chain":
            return [("", api, "chain")]
        if service.role == "db":
            return [("", api, f"{n.name}-db") for n in self.nodes]
        if path == "chain":
            raise ConfigError(f"{service.name}: on a Docker testnet every node reaches the "
                              "chain through one proxy; target chain")
        raise ConfigError(f"{service.name} has no toxiproxy in front; toxics apply to nodes, "
                          "their databases and the chain")

    def chain_rpc(self) -> tuple[str, str]:
        return "", self.controller_rpc()

    def controller_rpc(self) -> str:
        return str(self.record["chain"]["rpc"])

    # --- churn: new identities on this testnet ------------------------------------------

    def churn_add(self) -> Plan:
        from shakedown.faults import churn

        node = churn.next_node(self.testnet, self.record)
        return Plan([lambda: churn.add_node(self.testnet, self.record, node)],
                    churn.undo_add(self.testnet, self.record, node),
                    f"new node {node.name}: NodeRegistry.addNode + addToNetwork + docker run")

    def churn_remove(self, services: list[Service]) -> Plan:
        """Out of the canonical network and stopped; undo puts it back and starts it."""
        member = {"op": "canonical", "rpc_url": self.controller_rpc(),
                  "contracts": self.record["contracts"]}
        apply: list[Step] = []
        undo: list[Step] = []
        for s in services:
            apply += [{**member, "node_id": s.node_id, "member": False},
                      {"op": "service", "at": s.at, "action": "stop"}]
            undo += [{**member, "node_id": s.node_id, "member": True},
                     {"op": "service", "at": s.at, "action": "start"}]
        return Plan(apply, undo, "NodeRegistry.removeFromNetwork + docker stop")


@cache
def netem_available(pid: int) -> bool:
    """Whether this kernel has sch_netem: try it on the loopback of ``pid``'s namespace."""
    base = ["nsenter", "-t", str(pid), "-n", "tc", "qdisc"]
    added = subprocess.run([*base, "add", "dev", "lo", "root", "handle", TC_HANDLE, "netem"],
                           capture_output=True, timeout=10).returncode == 0
    if added:
        subprocess.run([*base, "del", "dev", "lo", "root"], capture_output=True, timeout=10)
    return added


class DockerBackend:
    """The executor of one Docker testnet: steps run here, its host ledger on this machine."""

    runtime = "docker"

    def __init__(self, testnet: Testnet, record: dict[str, Any]) -> None:
        self.testnet = testnet
        self.record = record
        self.title, self.label = f"testnet {testnet.name}", testnet.name
        self.controller = controller_ledger(testnet)
        self.host = host_ledger(testnet)

    @classmethod
    def of(cls, testnet: Testnet) -> DockerBackend:
        """The backend of a deployed testnet; NotFoundError when it has no record."""
        record = load_record(testnet.record_path)
        if record is None:
            raise NotFoundError(f"testnet {testnet.name} is not deployed (no record at "
                                f"{testnet.record_path}); run 'shakedown up' first")
        return cls(testnet, record)

    def view(self) -> DockerView:
        return DockerView.of(self.testnet, self.record)

    def prepare(self, kind: Kind, target: str, params: dict[str, Any],
                ) -> tuple[DockerView, list[Service], str, dict[str, Any]]:
        view = self.view()
        target = target or kind.default_target
        return view, view.resolve(target, kind.roles), target, params

    def ledger_undo(self, plan: Plan, entry_tag: str) -> list[Step]:
        return list(plan.undo)

    def apply(self, entry: Entry, plan: Plan, ttl: float | None) -> None:
        """Host ledger first, then the steps; a step that fails undoes the whole plan."""
        self.host.put(entry)
        try:  # every precheck before any change: a refusal has nothing to roll back
            for step in plan.apply:
                if not callable(step) and step.get("precheck"):
                    run_step({"op": "sh", "at": step["at"], "cmd": step["precheck"]})
        except FaultError as e:
            self.host.update(entry.id, state="failed", error=str(e), cleared_at=time.time())
            raise
        try:
            for step in plan.apply:
                if callable(step):
                    step()
                else:
                    run_step({k: v for k, v in step.items() if k != "precheck"})
        except Exception as e:
            errors = undo_steps(plan.undo)
            self.host.update(entry.id, state="failed", error=str(e), cleared_at=time.time())
            rolled = "rolled back" if not errors else f"rollback failed too: {errors[0]}"
            raise FaultError(f"{e} ({rolled})") from e
        now = time.time()
        self.host.update(entry.id, state="cleared" if plan.instant else "active",
                         applied_at=now, **({"cleared_at": now} if plan.instant else {}))
        if ttl is not None and not plan.instant:
            self._expire_later(entry)

    def undo(self, entry: Entry) -> None:
        errors = undo_steps(entry.undo)
        if errors:
            self.host.update(entry.id, error="; ".join(errors))
            raise FaultError(f"{entry.id} {entry.kind} {entry.target}: {errors[0]}")
        self.host.update(entry.id, state="cleared", cleared_at=time.time())

    def host_entries(self) -> list[Entry]:
        return self.host.entries()

    def _expire_later(self, entry: Entry) -> None:
        """A detached process on this (the Docker) host heals the fault at its expiry."""
        log = self.host.path.with_suffix(".log")
        with open(log, "a") as out:
            subprocess.Popen([sys.executable, "-m", "shakedown.faults.expire",
                              str(self.host.path), entry.id],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True, close_fds=True)

    # --- what faults left behind -----------------------------------------------------------

    def residue(self) -> list[str]:
        """Open ledger entries, toxics, stopped or skewed containers, and in each running
        container's namespace any rule or qdisc that is not Docker's default (ours named as
        ours). On a remote Docker host only the ledgers and its toxiproxy are read."""
        found = [f"open fault {e.summary()}" for e in self.host.entries() if e.open]
        found += [f"open fault {e.summary()}" for e in self.controller.entries()
                  if e.open and e.id not in {x.id for x in self.host.entries()}]
        if (self.record.get("proxy") or {}).get("api"):
            found += proxy_residue(self.record["proxy"]["api"])
        if self.testnet.remote_docker:
            return found
        label = {"label": f"{LABEL_TESTNET}={self.testnet.name}"}
        for c in engine().containers.list(all=True, filters=label):
            if c.status != "running":
                found.append(f"container {c.name} is {c.status}")
                continue
            if CLOCK_LABEL in c.labels:
                found.append(f"container {c.name} runs with a skewed clock "
                             f"(FAKETIME={c.labels[CLOCK_LABEL]})")
            try:
                listing = in_netns(c.name, ["/bin/sh", "-c", netshell.READ_NET])
            except FaultError as e:
                found.append(f"container {c.name}: could not read its network namespace: {e}")
                continue
            found += [f"container {c.name}: {line}"
                      for line in netshell.net_residue(listing, container=True)]
        return found

    def forget(self) -> list[str]:
        """Remove both ledgers when no entry is open; FaultError (nothing removed) else."""
        still = {e.id: e for e in [*self.controller.entries(), *self.host.entries()] if e.open}
        refuse_open(self.testnet.name, list(still.values()))
        return [str(p) for ledger in (self.controller, self.host) for p in remove_ledger(ledger)]

    def close(self) -> None:
        pass


def proxy_residue(api: str) -> list[str]:
    """Toxics and disabled proxies on the toxiproxy at ``api``."""
    found = []
    for proxy in ToxiproxyClient(api, timeout=5).proxies().values():
        found += [f"toxic {t.name} ({t.type}) on proxy {proxy.name}" for t in proxy.toxics]
        if not proxy.enabled:
            found.append(f"proxy {proxy.name} is disabled")
    return found


def undo_steps(steps: list[dict[str, Any]]) -> list[str]:
    """Run every undo step, continuing past failures; the failures' messages."""
    errors = []
    for step in steps:
        try:
            run_step(step, undo=True)
        except ShakedownError as e:
            errors.append(f"{step['op']}: {e}")
        except Exception as e:  # the engine or a socket: still keep going, say what it was
            errors.append(f"{step['op']}: {type(e).__name__}: {e}")
    return errors


def controller_ledger(testnet: Testnet) -> Ledger:
    return Ledger(testnet.record_path.parent / "faults.json")


def host_ledger(testnet: Testnet) -> Ledger:
    return Ledger(host_ledger_dir() / f"{testnet.name}.json")


def heal_entry(ledger: Ledger, entry_id: str, by: str) -> Entry | None:
    """Undo one open entry of ``ledger`` (used by the TTL process); None when not open."""
    entry = ledger.get(entry_id)
    if entry is None or not entry.open:
        return None
    errors = undo_steps(entry.undo)
    if errors:
        return ledger.update(entry_id, error="; ".join(errors))
    return ledger.update(entry_id, state="cleared", cleared_at=time.time(),
                         notes={**entry.notes, "cleared_by": by})


def refuse_open(testnet: str, still: list[Entry]) -> None:
    if still:
        ids = ", ".join(f"{e.id} {e.kind} {e.target}" for e in still[:3])
        raise FaultError(f"testnet {testnet}: {len(still)} fault(s) still open ({ids}); kept "
                         "the fault ledgers; run 'shakedown fault clear' first")


def remove_ledger(ledger: Ledger) -> list[Path]:
    """The ledger file and what sits beside it: its lock, a write in progress, TTL logs."""
    removed = []
    for path in (ledger.path, *(ledger.path.with_suffix(s) for s in (".lock", ".partial",
                                                                     ".log"))):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
