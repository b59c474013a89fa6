"""pyinfra operations behind the scripts in faults/: apply one fault, or clear them all.

The scripts read ``host.data`` (inventory data plus ``--data key=value``): ``target``,
``ttl`` (``60s``) and the kind's own parameters. Everything is validated when pyinfra plans,
so bad input stops the run before anything is touched.

On a Docker host the testnet's ``Injector`` acts. On SSH hosts (``shakedown.faults.hostinv``)
the script runs for every host; the one the target names (a host, or a service on it) applies
the fault through ``HostInjector`` (ledgers on the host and here, TTL as a systemd timer), the
others have nothing to do; ``clear.py`` clears each host's own open faults.

    pyinfra inventories/local.py faults/netem.py --data target=node-200 --data delay_ms=200
    pyinfra vms.py faults/tbf.py --data target=h2 --data rate_kbit=4000 --data dst=10.0.0.3
"""

from __future__ import annotations

from typing import Any

from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import PyinfraError

from shakedown.errors import ShakedownError
from shakedown.faults.cli import parse_duration
from shakedown.faults.hostinv import HostGroup, host_groups, is_ssh_host
from shakedown.faults.hostkinds import HOST_KINDS
from shakedown.faults.hosts import HostInjector
from shakedown.faults.injector import Injector
from shakedown.faults.kinds import KINDS
from shakedown.model import Testnet


class FaultInputError(PyinfraError):
    """Bad --data for a fault script: pyinfra prints this one line and stops."""


def fault_from_data(host: Any, kind: str | None = None) -> None:
    """Apply the fault named by ``kind`` (or ``--data kind=...``) with the host's data."""
    kind = kind or str(host.data.get("kind") or "")
    if is_ssh_host(host.name, host.data.dict()):
        _host_fault_from_data(host, kind)
        return
    try:
        if kind not in KINDS:
            raise ShakedownError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        testnet = Testnet.from_data(host.data)
        params = {name: host.data.get(name) for name in KINDS[kind].params
                  if host.data.get(name) is not None}
        KINDS[kind].parse(params)
        ttl = host.data.get("ttl")
        seconds = parse_duration(str(ttl)) if ttl else None
    except ShakedownError as e:
        raise FaultInputError(f"faults: {e}") from None
    fault(name=f"{testnet.name}: {kind} {host.data.get('target') or ''}".rstrip(),
          testnet=testnet, kind=kind, target=str(host.data.get("target") or ""),
          params=params, ttl=seconds)


def clear_from_data(host: Any) -> None:
    if is_ssh_host(host.name, host.data.dict()):
        group = _group_of(host)
        host_clear(name=f"{group.testnet}: clear faults on {host.name}", group=group,
                   host_name=host.name)
        return
    clear(name=f"{Testnet.from_data(host.data).name}: clear faults",
          testnet=Testnet.from_data(host.data))


def _group_of(host: Any) -> HostGroup:
    """The host's ledger group, from every host of the inventory (services may live
    elsewhere)."""
    from pyinfra import inventory

    groups = host_groups([(h.name, h.data.dict()) for h in inventory])
    return next(g for g in groups if host.name in {t.name for t in g.targets})


def _host_fault_from_data(host: Any, kind: str) -> None:
    """On SSH hosts: checked here for every host; applied by the one the target names."""
    target = str(host.data.get("target") or "")
    try:
        if kind not in HOST_KINDS:
            raise ShakedownError(f"{kind!r} is not a fault kind of SSH hosts; known: "
                                 f"{', '.join(HOST_KINDS)}")
        group = _group_of(host)
        given = {name: host.data.get(name) for name in HOST_KINDS[kind].params
                 if host.data.get(name) is not None}
        on, params = group.place(HOST_KINDS[kind], target, given)
        HOST_KINDS[kind].parse(params)
        ttl = host.data.get("ttl")
        seconds = parse_duration(str(ttl)) if ttl else None
    except ShakedownError as e:
        raise FaultInputError(f"faults: {e}") from None
    host_fault(name=f"{group.testnet}: {kind} {target}", group=group, kind=kind,
               host_name=on, here=host.name, params=params, ttl=seconds)


@operation()
def fault(testnet: Testnet, kind: str, target: str, params: dict[str, Any],
          ttl: float | None):  # type: ignore[no-untyped-def]
    """Apply one fault through the testnet's injector (ledgers written first)."""
    yield FunctionCommand(_apply, (testnet, kind, target, params, ttl), {})


@operation()
def clear(testnet: Testnet):  # type: ignore[no-untyped-def]
    """Clear every open fault of the testnet; nothing to do when none is open."""
    injector = Injector.for_testnet(testnet)
    if not injector.active():
        from pyinfra import host

        host.noop("no open faults")
        return
    yield FunctionCommand(lambda: _report(injector.clear_all()), (), {})


@operation()
def host_fault(group: HostGroup, kind: str, host_name: str, here: str, params: dict[str, Any],
               ttl: float | None):  # type: ignore[no-untyped-def]
    """Apply one fault on ``host_name`` through HostInjector, when this host is that one."""
    if here != host_name:
        from pyinfra import host

        host.noop(f"the target is on {host_name}")
        return
    yield FunctionCommand(_apply_on_host, (group, kind, host_name, params, ttl), {})


@operation()
def host_clear(group: HostGroup, host_name: str):  # type: ignore[no-untyped-def]
    """Clear every open fault of ``host_name`` (read from its ledger and ours)."""
    with _injector(group) as inj:
        open_here = [e for e in inj.entries([host_name]) if e.open]
    if not open_here:
        from pyinfra import host

        host.noop("no open faults")
        return
    yield FunctionCommand(_clear_host, (group, host_name), {})


def _injector(group: HostGroup) -> HostInjector:
    return HostInjector(group.testnet, list(group.targets), group.controller_dir)


def _apply_on_host(group: HostGroup, kind: str, host_name: str, params: dict[str, Any],
                   ttl: float | None) -> None:
    with _injector(group) as inj:
        entry = inj.apply(kind, host_name, params, ttl=ttl)
    print(f"applied {entry.summary()} via {entry.mechanism}")


def _clear_host(group: HostGroup, host_name: str) -> None:
    with _injector(group) as inj:
        _report(inj.clear_all([host_name]))


def _apply(testnet: Testnet, kind: str, target: str, params: dict[str, Any],
           ttl: float | None) -> None:
    entry = Injector.for_testnet(testnet).apply(kind, target, params, ttl=ttl)
    print(f"applied {entry.summary()} via {entry.mechanism}")


def _report(entries: list[Any]) -> None:
    for entry in entries:
        print(f"cleared {entry.summary()}")
