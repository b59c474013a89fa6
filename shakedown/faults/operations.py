"""pyinfra operations behind the scripts in faults/: apply one fault, or clear them all.

The scripts read ``host.data`` (inventory data plus ``--data key=value``): ``target``,
``ttl`` (``60s``) and the kind's own parameters. Everything is validated when pyinfra plans,
so bad input stops the run before anything is touched.

    pyinfra inventories/local.py faults/netem.py --data target=node-200 --data delay_ms=200
"""

from __future__ import annotations

from typing import Any

from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import PyinfraError

from shakedown.errors import ShakedownError
from shakedown.faults.cli import parse_duration
from shakedown.faults.injector import Injector
from shakedown.faults.kinds import KINDS
from shakedown.model import Testnet


class FaultInputError(PyinfraError):
    """Bad --data for a fault script: pyinfra prints this one line and stops."""


def fault_from_data(host: Any, kind: str | None = None) -> None:
    """Apply the fault named by ``kind`` (or ``--data kind=...``) with the host's data."""
    kind = kind or str(host.data.get("kind") or "")
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
    clear(name=f"{Testnet.from_data(host.data).name}: clear faults",
          testnet=Testnet.from_data(host.data))


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


def _apply(testnet: Testnet, kind: str, target: str, params: dict[str, Any],
           ttl: float | None) -> None:
    entry = Injector.for_testnet(testnet).apply(kind, target, params, ttl=ttl)
    print(f"applied {entry.summary()} via {entry.mechanism}")


def _report(entries: list[Any]) -> None:
    for entry in entries:
        print(f"cleared {entry.summary()}")
