"""Teardown: forget a testnet's fault ledgers once every fault in them is closed.

A ledger is the only way to heal what it records, so it is removed only when no entry is
intended or active; otherwise nothing is removed and FaultError names the open faults (clear
them first: ``shakedown fault clear``). Called by ``shakedown down``.

    forget_closed(testnet)                                     # a Docker testnet
    forget_closed_on_hosts("sdvm", targets, Path(".shakedown/sdvm"))  # SSH hosts
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from shakedown.errors import FaultError
from shakedown.faults.hosts import HostInjector
from shakedown.faults.injector import controller_ledger, host_ledger
from shakedown.faults.ledger import Entry, Ledger, merged
from shakedown.faults.names import HOST_LEDGER_DIR
from shakedown.faults.ssh import SSHTarget
from shakedown.model import Testnet

# Next to a ledger file: its lock, a write in progress, the TTL processes' log, the intents.
_BESIDE = (".lock", ".partial", ".log")


def forget_closed(testnet: Testnet) -> list[Path]:
    """Remove the controller's and the Docker host's fault ledgers of ``testnet`` when no
    entry is open; the paths removed. FaultError (nothing removed) when one is open."""
    controller, host = controller_ledger(testnet), host_ledger(testnet)
    _refuse_open(testnet.name, [e for e in merged(controller, host) if e.open])
    return [p for ledger in (controller, host) for p in _remove(ledger)]


def forget_closed_on_hosts(testnet: str, targets: Sequence[SSHTarget],
                           controller_dir: Path) -> list[str]:
    """Remove ``testnet``'s fault ledgers on every SSH host and the controller's
    (``<controller_dir>/host-faults.json``) when no entry is open on any of them; what was
    removed (``host:path``). FaultError (nothing removed) when a fault is open;
    UnreachableError when a host does not answer (its ledger cannot be judged)."""
    with HostInjector(testnet, targets, controller_dir) as inj:
        entries = {e.id: e for e in inj.controller.entries()}
        for t in targets:
            entries.update({e.id: e for e in inj.read_host_ledger(t.name)
                            if e.open or e.id not in entries})
        _refuse_open(testnet, [e for e in entries.values() if e.open])
        removed = []
        for t in targets:
            out = inj.session(t.name).check(_forget_script(inj.host_ledger))
            removed += [f"{t.name}:{line}" for line in out.split()]
    return removed + [str(p) for p in _remove(inj.controller)]


def _refuse_open(testnet: str, still: list[Entry]) -> None:
    if still:
        ids = ", ".join(f"{e.id} {e.kind} {e.target}" for e in still[:3])
        raise FaultError(f"testnet {testnet}: {len(still)} fault(s) still open ({ids}); kept "
                         "the fault ledgers; run 'shakedown fault clear' first")


def _remove(ledger: Ledger) -> list[Path]:
    removed = []
    for path in (ledger.path, *(ledger.path.with_suffix(s) for s in _BESIDE)):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def _forget_script(ledger: str) -> str:
    """Shell: remove the ledger and what sits beside it; when no other testnet's ledger is
    left (locks aside), the ledger helper and our directories go too. Prints what it removed."""
    base = shlex.quote(str(Path(ledger).with_suffix("")))
    helper = "/var/lib/shakedown/sd-ledger-*.py"
    return "\n".join([
        f"for f in {base}.json {base}.lock {base}.partial; do "
        "if [ -e \"$f\" ]; then rm -f \"$f\" && echo \"$f\"; fi; done",
        f"if [ -d {base}.d ]; then rm -rf {base}.d && echo {base}.d; fi",
        f"if [ -z \"$(ls -A {HOST_LEDGER_DIR} 2>/dev/null | grep -v '[.]lock$')\" ]; then",
        f"  for f in {helper}; do if [ -e \"$f\" ]; then rm -f \"$f\" && echo \"$f\"; fi; done",
        f"  rm -f {HOST_LEDGER_DIR}/*.lock; rmdir {HOST_LEDGER_DIR} /var/lib/shakedown "
        "2>/dev/null",
        "fi",
        "true",
    ]) + "\n"


def heal_before_down(inventory: Path, testnets: Sequence[Testnet]) -> list[str]:
    """Clear every open fault of the inventory's testnets (Docker testnets from their record,
    SSH hosts from their ledgers), so teardown forgets closed ledgers only; what failed."""
    from shakedown.errors import ShakedownError
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.injector import Injector
    from shakedown.faults.ssh import read_hosts

    problems = []
    for testnet in testnets:
        if testnet.on_hosts or testnet.remote_docker or not testnet.record_path.exists():
            continue
        try:
            Injector.for_testnet(testnet).clear_all()
        except ShakedownError as e:
            problems.append(f"{testnet.name}: faults not cleared: {e}")
    for group in host_groups(read_hosts(inventory)):
        try:
            with HostInjector(group.testnet, group.targets, group.controller_dir) as inj:
                inj.clear_all()
        except ShakedownError as e:
            problems.append(f"{group.testnet}: host faults not cleared: {e}")
    return problems


def forget_after_down(inventory: Path, testnets: Sequence[Testnet]) -> list[str]:
    """Forget the closed fault ledgers of the inventory's testnets; what could not be."""
    from shakedown.errors import ShakedownError
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.ssh import read_hosts

    problems = []
    for testnet in testnets:
        if testnet.on_hosts or testnet.remote_docker:
            continue
        try:
            forget_closed(testnet)
        except ShakedownError as e:
            problems.append(str(e))
    for group in host_groups(read_hosts(inventory)):
        try:
            forget_closed_on_hosts(group.testnet, group.targets, group.controller_dir)
        except ShakedownError as e:
            problems.append(str(e))
    return problems
