"""Where faults go: the fault backends of an inventory, one per testnet or group of SSH hosts.

An inventory host is an SSH host when it is not ``@local`` and its data says ``runtime:
"systemd"`` or carries no testnet data (``shakedown.faults.hostinv.is_ssh_host``); SSH hosts
that share a ledger name are one ``SSHBackend``. Every other testnet is a Docker testnet, one
``DockerBackend`` from its deployment record. The CLI, the pyinfra fault scripts, teardown and
verify's fault check all find their backends here, and then act through ``Injector``.

    for backend in backends(Path("inventories/local.py")):
        print(backend.title, Injector(backend).active())
    owner(path, "node-200")   # the backend whose targets include node-200
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, ShakedownError
from shakedown.faults.docker import DockerBackend
from shakedown.faults.hostinv import HostGroup, host_groups, is_ssh_host
from shakedown.faults.hosts import SSHBackend
from shakedown.faults.injector import Backend, Injector
from shakedown.faults.ssh import read_hosts
from shakedown.model import Testnet, inventory_hosts, load_inventory


def docker_testnets(inventory: Path) -> list[Testnet]:
    """The inventory's Docker testnets (none when every host is an SSH host)."""
    if not any(not is_ssh_host(n, d) and ("testnet" in d or "roles" in d)
               for n, d in inventory_hosts(inventory)):
        return []
    return [t for t in load_inventory(inventory) if not t.on_hosts]


def groups(inventory: Path) -> list[HostGroup]:
    return host_groups(read_hosts(inventory))


def backends(inventory: Path, only: str | None = None, *,
             teardown: str = "") -> list[Backend]:
    """Every backend of the inventory (or of the testnet ``only``). For ``teardown`` (``heal``
    or ``forget``) remote Docker hosts are left out (their engine is not this one), and so are
    Docker testnets with no record to ``heal``; to ``forget``, the ledgers alone are enough.
    ConfigError when the inventory has neither kind of host."""
    found: list[Backend] = []
    for t in docker_testnets(inventory):
        if only and t.name != only:
            continue
        if teardown and (t.remote_docker or (teardown == "heal" and
                                             not t.record_path.exists())):
            continue
        found.append(DockerBackend(t, load_record(t.record_path) or {}) if teardown == "forget"
                     else DockerBackend.of(t))
    host_groups_ = groups(inventory)
    if not host_groups_ and not docker_testnets(inventory):
        raise ConfigError(f"inventory {inventory}: no Docker testnet and no SSH host in it")
    found += [SSHBackend(g) for g in host_groups_ if not only or g.testnet == only]
    if only and not found:
        raise ConfigError(f"--testnet {only}: not in {inventory}")
    return found


def owner(inventory: Path, target: str, only: str | None = None) -> Backend:
    """The backend whose targets include ``target``: the SSH hosts that name it, else the one
    Docker testnet. ConfigError naming what is known when none (or several) fit."""
    host_groups_ = [g for g in groups(inventory) if not only or g.testnet == only]
    on_hosts = [g for g in host_groups_ if g.resolve(target)]
    if on_hosts:
        return SSHBackend(on_hosts[0])
    testnets = [t for t in docker_testnets(inventory) if not only or t.name == only]
    if not testnets:
        if only and not host_groups_:
            raise ConfigError(f"--testnet {only}: not in {inventory}")
        if not host_groups_:
            raise ConfigError(f"inventory {inventory}: no Docker testnet and no SSH host in it")
        known = sorted({n for g in host_groups_
                        for n in [*(t.name for t in g.targets), *g.services]})
        what = f"unknown target {target!r}" if target else "this fault needs a target"
        raise ConfigError(f"{what} in {inventory}; hosts and services: {', '.join(known)}")
    if len(testnets) > 1:
        names = ", ".join(t.name for t in testnets)
        raise ConfigError(f"the inventory has several testnets ({names}); pick one: --testnet")
    return DockerBackend.of(testnets[0])


def backend_for(testnet: Testnet, inventory: Path | None = None) -> Backend:
    """A Docker testnet's backend (from its record), or a systemd testnet's SSH hosts (from
    ``inventory``, which names how to reach them)."""
    if not testnet.on_hosts:
        return DockerBackend.of(testnet)
    if inventory is None:
        raise ConfigError(f"testnet {testnet.name} runs on SSH hosts: give the inventory")
    for g in groups(inventory):
        if g.testnet == testnet.name:
            return SSHBackend(g)
    raise ConfigError(f"testnet {testnet.name}: no SSH hosts of it in {inventory}")


def read_residue(testnet: Testnet, inventory: Path | None = None) -> list[str]:
    """What faults left behind on ``testnet``, one line each; empty means clean."""
    with Injector(backend_for(testnet, inventory)) as inj:
        return inj.residue()


def heal_all(inventory: Path, only: str | None = None) -> list[str]:
    """Clear every open fault of the inventory's deployed testnets and SSH hosts (teardown
    heals before it removes anything); what failed, one line each."""
    return _each(inventory, only, "heal", Injector.clear_all)


def forget_all(inventory: Path, only: str | None = None) -> list[str]:
    """Forget the closed fault ledgers of the inventory's testnets and SSH hosts (teardown);
    what could not be forgotten, one line each."""
    return _each(inventory, only, "forget", Injector.forget)


def _each(inventory: Path, only: str | None, teardown: str,
          act: Callable[[Injector], object]) -> list[str]:
    problems = []
    for backend in backends(inventory, only, teardown=teardown):
        try:
            with Injector(backend) as inj:
                act(inj)
        except ShakedownError as e:
            problems.append(f"{backend.title}: could not {teardown}: {e}")
    return problems
