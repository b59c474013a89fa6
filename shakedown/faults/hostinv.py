"""Which inventory hosts take faults over SSH, their services, and where their ledgers live.

The rule (also in ``shakedown fault --help`` and the README): a host is an SSH host when it is
not ``@local``/``@docker`` and either its data says ``runtime: "systemd"`` (a testnet that
shakedown deployed as systemd units) or it carries no testnet data at all (no ``testnet``, no
``roles``: a VM, or services someone else deployed). Every other host with testnet data is a
Docker host: its faults act on its testnet's containers (``shakedown.faults.Injector``).

A fault target on SSH hosts is a host name, or a service: ``services: {"node-100":
"refnode.service"}`` in a host's data, or, on a systemd testnet, every service shakedown runs
there (unit ``<testnet>-<service>.service``).

    for group in host_groups(read_hosts(Path("inventories/vagrant.py"))):
        print(group.testnet, [t.name for t in group.targets])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError
from shakedown.faults.ssh import SSHTarget, read_hosts
from shakedown.model import Testnet, testnets_of

Hosts = Sequence[tuple[str, Mapping[str, Any]]]
DEFAULT_LEDGER = "shakedown"  # the ledger name of hosts that carry no testnet


def is_ssh_host(name: str, data: Mapping[str, Any]) -> bool:
    """The routing rule of the module docstring."""
    if name == "@local" or name.startswith("@docker"):
        return False
    return data.get("runtime") == "systemd" or not ("testnet" in data or "roles" in data)


@dataclass(frozen=True)
class HostGroup:
    """SSH hosts whose faults share one ledger name (their testnet's, or ``shakedown``)."""

    testnet: str
    targets: tuple[SSHTarget, ...]
    controller_dir: Path
    services: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (host, unit)

    def resolve(self, target: str) -> tuple[str, str] | None:
        """``(host, unit)`` for a host name (unit "") or a service; None when neither."""
        if target in {t.name for t in self.targets}:
            return target, ""
        return self.services.get(target)


def host_groups(hosts: Hosts) -> list[HostGroup]:
    """The SSH hosts of ``hosts`` (see ``read_hosts``), grouped by ledger name."""
    ssh = [(name, data) for name, data in hosts if is_ssh_host(name, data)]
    by_name: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, data in ssh:
        by_name.setdefault(str(data.get("testnet") or DEFAULT_LEDGER), []).append((name, data))
    units = _testnet_units([h for h in ssh if h[1].get("runtime") == "systemd"])
    groups = []
    for ledger, members in by_name.items():
        services: dict[str, tuple[str, str]] = {}
        for name, data in members:
            for service, unit in _given_services(name, data).items():
                services.setdefault(service, (name, unit))
        for service, (name, unit) in units.get(ledger, {}).items():
            services.setdefault(service, (name, unit))
        first = members[0][1]
        record = Testnet.from_data({"testnet": ledger, "record_path": first.get("record_path")})
        groups.append(HostGroup(
            ledger, tuple(SSHTarget.from_host_data(n, d) for n, d in members),
            record.record_path.parent, services))
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


def _testnet_units(hosts: Hosts) -> dict[str, dict[str, tuple[str, str]]]:
    """Per systemd testnet: each service shakedown runs on its hosts -> (host, unit). A
    service on several hosts (proxy, db) maps to the first."""
    if not hosts:
        return {}
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for testnet in testnets_of(hosts, "the inventory"):
        units = found.setdefault(testnet.name, {})
        for node in testnet.nodes:
            units[node.name] = (node.host, testnet.unit(node.name))
        for host in testnet.hosts:
            for role in host.roles:
                if role != "node":
                    units.setdefault(role, (host.name, testnet.unit(role)))
    return found
