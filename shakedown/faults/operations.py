"""pyinfra operations behind the scripts in faults/: apply one fault, or clear them all.

The scripts read ``host.data`` (inventory data plus ``--data key=value``): ``target``,
``ttl`` (``60s``) and the kind's own parameters. Everything is validated when pyinfra plans,
so bad input stops the run before anything is touched. Each pyinfra host finds its backend
(``shakedown.faults.inventory``): a Docker testnet applies on its Docker host; on SSH hosts
the script runs for every host and the one the target lives on applies, the others have
nothing to do. ``clear.py`` clears each host's own open faults.

    pyinfra inventories/local.py faults/netem.py --data target=node-200 --data delay_ms=200
    pyinfra vms.py faults/tbf.py --data target=h2 --data rate_kbit=4000 --data dst=10.0.0.3
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import PyinfraError

from shakedown.errors import ConfigError, ShakedownError
from shakedown.faults.cli import parse_duration
from shakedown.faults.docker import DockerBackend
from shakedown.faults.hostinv import host_groups, is_ssh_host
from shakedown.faults.hosts import SSHBackend
from shakedown.faults.injector import Backend, Injector
from shakedown.faults.kinds import KINDS
from shakedown.model import Testnet

Opener = Callable[[], Backend]


class FaultInputError(PyinfraError):
    """Bad --data for a fault script: pyinfra prints this one line and stops."""


def _opener(host: Any) -> tuple[Opener, str]:
    """How to open this pyinfra host's backend, and the name its ledger goes by."""
    if not is_ssh_host(host.name, host.data.dict()):
        testnet = Testnet.from_data(host.data)
        return (lambda: DockerBackend.of(testnet)), testnet.name
    from pyinfra import inventory

    groups = host_groups([(h.name, h.data.dict()) for h in inventory])
    group = next(g for g in groups if host.name in {t.name for t in g.targets})
    return (lambda: SSHBackend(group)), group.testnet


def fault_from_data(host: Any, kind: str | None = None) -> None:
    """Apply the fault named by ``kind`` (or ``--data kind=...``) with the host's data."""
    kind = kind or str(host.data.get("kind") or "")
    target = str(host.data.get("target") or "")
    try:
        if kind not in KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        open_backend, name = _opener(host)
        params = {p: host.data.get(p) for p in KINDS[kind].params
                  if host.data.get(p) is not None}
        ttl = host.data.get("ttl")
        seconds = parse_duration(str(ttl)) if ttl else None
        with Injector(open_backend()) as inj:
            where = inj.check(kind, target, params, seconds)
    except ShakedownError as e:
        raise FaultInputError(f"faults: {e}") from None
    fault(name=f"{name}: {kind} {target}".rstrip(), open_backend=open_backend, kind=kind,
          target=target, params=params, ttl=seconds, on=where, here=_here(host))


def clear_from_data(host: Any) -> None:
    open_backend, name = _opener(host)
    clear(name=f"{name}: clear faults on {host.name}", open_backend=open_backend,
          here=_here(host))


def _here(host: Any) -> str:
    """The place name this pyinfra host has in its backend: an SSH host's name, else ""."""
    return host.name if is_ssh_host(host.name, host.data.dict()) else ""


@operation()
def fault(open_backend: Opener, kind: str, target: str, params: dict[str, Any],
          ttl: float | None, on: str, here: str):  # type: ignore[no-untyped-def]
    """Apply one fault (ledgers written first), on the host the target lives on."""
    if here and here != on:
        from pyinfra import host

        host.noop(f"the target is on {on}")
        return
    yield FunctionCommand(_apply, (open_backend, kind, target, params, ttl), {})


@operation()
def clear(open_backend: Opener, here: str):  # type: ignore[no-untyped-def]
    """Clear every open fault (on this host, for SSH hosts); nothing to do when none is."""
    with Injector(open_backend()) as inj:
        mine = [e for e in inj.active() if not here or e.target == here]
    if not mine:
        from pyinfra import host

        host.noop("no open faults")
        return
    yield FunctionCommand(_clear, (open_backend, here), {})


def _apply(open_backend: Opener, kind: str, target: str, params: dict[str, Any],
           ttl: float | None) -> None:
    with Injector(open_backend()) as inj:
        entry = inj.apply(kind, target, params, ttl=ttl)
    print(f"applied {entry.summary()} via {entry.mechanism}")


def _clear(open_backend: Opener, here: str) -> None:
    with Injector(open_backend()) as inj:
        for entry in inj.clear_all([here] if here else None):
            print(f"cleared {entry.summary()}")
