"""Which inventory hosts take faults over SSH, their services, and where their ledgers live.

The rule (also in ``shakedown fault --help`` and the README): a host is an SSH host when it is
not ``@local``/``@docker`` and either its data says ``runtime: "systemd"`` (a testnet that
shakedown deployed as systemd units) or it carries no testnet data at all (no ``testnet``, no
``roles``: a VM, or services someone else deployed). Every other host with testnet data is a
Docker host: its faults act on its testnet's containers (``shakedown.faults.Injector``).

A fault target on SSH hosts is a host name, or a service: ``services: {"node-100":
"refnode.service"}`` in a host's data, or, on a systemd testnet, every service shakedown runs
there (unit ``<testnet>-<service>.service``). A toxic on such a testnet's node goes to the
toxiproxy of the node's host: its proxy ``node-200`` (peers), ``node-200-db`` or ``chain``.

    for group in host_groups(read_hosts(Path("inventories/vagrant.py"))):
        print(group.testnet, [t.name for t in group.targets])
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError
from shakedown.faults.kind import Service
from shakedown.faults.ssh import SSHTarget, read_hosts
from shakedown.model import ROLES, Testnet, testnets_of

Hosts = Sequence[tuple[str, Mapping[str, Any]]]
DEFAULT_LEDGER = "shakedown"  # the ledger name of hosts that carry no testnet


def is_ssh_host(name: str, data: Mapping[str, Any]) -> bool:
    """The routing rule of the module docstring."""
    if name == "@local" or name.startswith("@docker"):
        return False
    return data.get("runtime") == "systemd" or not ("testnet" in data or "roles" in data)


@dataclass(frozen=True)
class HostGroup:
    """SSH hosts whose faults share one ledger name (their testnet's, or ``shakedown``);
    ``model`` is the systemd testnet shakedown runs on them, if any."""

    testnet: str
    targets: tuple[SSHTarget, ...]
    controller_dir: Path
    services: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (host, unit)
    model: Testnet | None = None

    def resolve(self, target: str) -> tuple[str, str] | None:
        """``(host, unit)`` for a host name (unit "") or a service; None when neither."""
        if target in {t.name for t in self.targets}:
            return target, ""
        return self.services.get(target)

    def service(self, target: str) -> Service:
        """The ``Service`` a target names (a host: role ``host``); ConfigError when neither.

        Example: ``service("node-200")`` -> ``Service("node-200", "node", at="h2",
        node_id=200, unit="sdunit-node-200.service")``.
        """
        where = self.resolve(target)
        if where is None:
            known = [*(t.name for t in self.targets), *self.services]
            raise ConfigError(f"target={target!r}: not a host or service of {self.testnet}; "
                              f"known: {', '.join(known)}")
        host, unit = where
        if not unit:
            return Service(target, "host", host)
        node_id = int(target[5:]) if re.match(r"^node-\d+$", target) else None
        role = "node" if node_id else target if target in ROLES else "service"
        return Service(target, role, host, node_id, unit)

    def toxiproxy(self, target: str, path: str) -> tuple[str, str, int]:
        """``(host, proxy, API port)``: the proxy on ``path`` (``node``, ``db``, ``chain``) in
        front of node ``target`` on its host's toxiproxy; for ``chain`` a host name also
        works (that host's chain proxy). ConfigError when ``target`` is neither."""
        if self.model is None:
            return self._no_toxiproxy(target, path)
        node = next((n for n in self.model.nodes if n.name == target), None)
        if node is not None:
            host = self.model.host_of(node)
        elif path == "chain" and target in {h.name for h in self.model.hosts}:
            host = self.model.host(target)
        else:
            return self._no_toxiproxy(target, path)
        if not host.has("proxy"):
            raise ConfigError(f"{target}: its host {host.name} has no proxy role, so no "
                              "toxiproxy is in front of it")
        proxies = {"chain": "chain"} if node is None else \
            {"node": node.name, "db": node.db_proxy, "chain": "chain"}
        return host.name, proxies[path], self.model.ports.proxy_api

    def _no_toxiproxy(self, target: str, path: str) -> Any:
        nodes = ", ".join(n.name for n in self.model.nodes) if self.model else "none"
        hosts = " or a host with the proxy role" if path == "chain" else ""
        raise ConfigError(f"{target}: no toxiproxy of {self.testnet} is in front of it; name a "
                          f"node ({nodes}){hosts}, or give proxy=NAME api_port=PORT")


def host_groups(hosts: Hosts) -> list[HostGroup]:
    """The SSH hosts of ``hosts`` (see ``read_hosts``), grouped by ledger name."""
    ssh = [(name, data) for name, data in hosts if is_ssh_host(name, data)]
    by_name: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, data in ssh:
        by_name.setdefault(str(data.get("testnet") or DEFAULT_LEDGER), []).append((name, data))
    systemd = [h for h in ssh if h[1].get("runtime") == "systemd"]
    models = {t.name: t for t in testnets_of(systemd, "the inventory")} if systemd else {}
    groups = []
    for ledger, members in by_name.items():
        services: dict[str, tuple[str, str]] = {}
        for name, data in members:
            for service, unit in _given_services(name, data).items():
                services.setdefault(service, (name, unit))
        for service, (name, unit) in _units(models.get(ledger)).items():
            services.setdefault(service, (name, unit))
        first = members[0][1]
        record = Testnet.from_data({"testnet": ledger, "record_path": first.get("record_path")})
        groups.append(HostGroup(
            ledger, tuple(SSHTarget.from_host_data(n, d) for n, d in members),
            record.record_path.parent, services, models.get(ledger)))
    return groups


def host_services(inventory_path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """Every service on the inventory's SSH hosts: ``{service: (host name, systemd unit)}``.

    Example: ``host_services("inventories/vagrant.py")["node-100"]`` ->
    ``("@vagrant/sdvm1", "sdvm-node-100.service")``.
    """
    found: dict[str, tuple[str, str]] = {}
    for group in host_groups(read_hosts(inventory_path)):
        for service, where in group.services.items():
            found.setdefault(service, where)
    return found


def _given_services(host: str, data: Mapping[str, Any]) -> dict[str, str]:
    """``services: {"node-100": "refnode@100.service"}`` from a host's data, checked."""
    raw = data.get("services") or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v for v in raw.values()):
        raise ConfigError(f"host {host}: services must map service names to systemd units, "
                          f"got {raw!r}")
    return {str(k): v for k, v in raw.items()}


def _units(testnet: Testnet | None) -> dict[str, tuple[str, str]]:
    """Each service shakedown runs on a systemd testnet's hosts -> (host, unit). A service on
    several hosts (proxy, db) maps to the first."""
    if testnet is None:
        return {}
    units = {node.name: (node.host, testnet.unit(node.name)) for node in testnet.nodes}
    for host in testnet.hosts:
        for role in host.roles:
            if role != "node":
                units.setdefault(role, (host.name, testnet.unit(role)))
    return units
