"""Apply and clear faults through one model, whatever runs the testnet.

``Injector`` validates everything first (kind, runtime, target, parameters, plan), writes the
entry with its undo to the controller's ledger, then hands the plan to its backend: the
Docker executor (``shakedown.faults.docker``) or the SSH one (``shakedown.faults.hosts``),
chosen once per testnet. A backend writes the host's ledger before acting, undoes at once when
acting fails half-way (the entry is then failed), and owns its TTL mechanism (a detached undo
on a Docker host, a systemd timer on a VM). ``clear`` replays undo steps and works from the
ledgers alone; a clear that could not heal says so.

    inj = Injector.for_testnet(testnet)              # a Docker testnet (its record)
    inj = Injector.for_inventory(path, "sdvm")       # any testnet or SSH hosts of an inventory
    entry = inj.apply("latency", "node-200", {"latency_ms": 200}, ttl=60)
    inj.clear(entry)
    inj.clear_all()
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from shakedown.errors import ConfigError, FaultError, NotFoundError, ShakedownError
from shakedown.faults.kind import Kind, Plan, Service, Step, View
from shakedown.faults.kinds import KINDS
from shakedown.faults.ledger import Entry, Ledger
from shakedown.model import Testnet


class Backend(Protocol):
    """One runtime's executor for one testnet (or group of SSH hosts)."""

    runtime: str
    title: str  # "testnet sd-x", "hosts of sdvm (h1, h2)"
    label: str  # "sd-x", "hosts of sdvm"
    controller: Ledger

    def prepare(self, kind: Kind, target: str, params: dict[str, Any],
                ) -> tuple[View, list[Service], str, dict[str, Any]]:
        """(view, the targets, the target as the entry names it, the parameters)."""

    def ledger_undo(self, plan: Plan, tag: str) -> list[Step]:
        """The plan's undo as the ledger keeps it (what this executor runs from a ledger)."""

    def apply(self, entry: Entry, plan: Plan, ttl: float | None) -> None:
        """Host ledger, act, TTL; FaultError after undoing what was done."""

    def undo(self, entry: Entry) -> None:
        """Undo and record it on the host; FaultError when a step failed."""

    def host_entries(self) -> list[Entry]: ...

    def residue(self) -> list[str]: ...

    def forget(self) -> list[str]: ...

    def close(self) -> None: ...


class Injector:
    """Faults on one backend: its controller ledger and its hosts' ledgers."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.controller = backend.controller

    @classmethod
    def for_testnet(cls, testnet: Testnet, inventory: Path | None = None) -> Injector:
        """A Docker testnet from its record; a systemd one from its inventory's hosts."""
        from shakedown.faults.inventory import backend_for

        return cls(backend_for(testnet, inventory))

    @classmethod
    def for_inventory(cls, inventory: Path, testnet: str | None = None) -> Injector:
        """The one testnet (or group of SSH hosts) of ``inventory``, or the one named."""
        from shakedown.faults.inventory import backends

        found = backends(inventory, testnet)
        if len(found) != 1:
            names = ", ".join(b.title for b in found) or "none"
            raise ConfigError(f"{inventory}: {len(found)} testnets or host groups ({names}); "
                              "name one")
        return cls(found[0])

    @classmethod
    def on_hosts(cls, testnet: str, hosts: Iterable[Any], controller_dir: Path) -> Injector:
        """SSH hosts given directly: ``Injector.on_hosts("sdvm", [SSHTarget(...)], dir)``."""
        from shakedown.faults.hosts import SSHBackend

        return cls(SSHBackend.of(testnet, hosts, controller_dir))

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    @property
    def runtime(self) -> str:
        return self.backend.runtime

    def check(self, kind: str, target: str = "", params: Mapping[str, Any] | None = None,
              ttl: float | None = None) -> str:
        """Validate a fault without acting (ConfigError in one line); the target as its entry
        will name it (on SSH hosts: the host)."""
        return self._validated(kind, target, params, ttl)[3]

    def _validated(self, kind: str, target: str, params: Mapping[str, Any] | None,
                   ttl: float | None) -> tuple[Kind, View, list[Service], str, dict[str, Any]]:
        if kind not in KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        spec = KINDS[kind]
        spec.supported(self.backend.runtime)
        if ttl is not None and ttl <= 0:
            raise ConfigError(f"ttl {ttl}: must be a positive number of seconds")
        view, services, target, raw = self.backend.prepare(spec, target, dict(params or {}))
        return spec, view, services, target, spec.parse(raw, self.backend.runtime)

    def apply(self, kind: str, target: str = "", params: Mapping[str, Any] | None = None,
              ttl: float | None = None) -> Entry:
        """Apply one fault; returns its ledger entry (active, or cleared for instant kinds)."""
        spec, view, services, target, values = self._validated(kind, target, params, ttl)
        tag = secrets.token_hex(4)
        plan = spec.plan(view, services, values, tag)  # may refuse: nothing written yet
        entry = self.controller.intend(
            kind=kind, target=target, params=values, undo=self.backend.ledger_undo(plan, tag),
            mechanism=plan.mechanism, tag=tag,
            expires_at=time.time() + ttl if ttl is not None else None)
        if plan.notes:
            entry = self.controller.update(entry.id, notes=plan.notes) or entry
        try:
            self.backend.apply(entry, plan, ttl)
        except FaultError as e:
            self.controller.update(entry.id, state="failed", error=str(e),
                                   cleared_at=time.time())
            raise FaultError(f"{kind} on {target}: {e}") from e
        except ShakedownError as e:  # the host did not answer: still open, clear will retry
            self.controller.update(entry.id, error=str(e))
            raise
        now = time.time()
        if plan.instant:
            return self.controller.update(entry.id, state="cleared", applied_at=now,
                                          cleared_at=now) or entry
        return self.controller.update(entry.id, state="active", applied_at=now) or entry

    def clear(self, entry: Entry | str) -> Entry:
        """Undo one fault; "already gone" counts as cleared. FaultError when it could not be
        healed (the entry keeps the error and stays open)."""
        entry_id = entry if isinstance(entry, str) else entry.id
        found = next((e for e in self.entries() if e.id == entry_id), None)
        if found is None:
            raise NotFoundError(f"no fault {entry_id} in the ledgers of {self.backend.title}")
        if not found.open:
            return found
        try:
            self.backend.undo(found)
        except ShakedownError as e:
            if self.controller.update(found.id, error=str(e)) is None:
                self.controller.put(found)
                self.controller.update(found.id, error=str(e))
            raise FaultError(str(e)) from e
        if self.controller.get(found.id) is None:
            self.controller.put(found)
        return self.controller.update(found.id, state="cleared", cleared_at=time.time()) or found

    def clear_all(self, targets: Iterable[str] | None = None) -> list[Entry]:
        """Clear every open fault (on ``targets`` only, when given), newest first; raise
        after trying all."""
        wanted = set(targets) if targets is not None else None
        cleared, failures = [], []
        for entry in reversed(self.active()):
            if wanted is not None and entry.target not in wanted:
                continue
            try:
                cleared.append(self.clear(entry))
            except FaultError as e:
                failures.append(str(e))
        if failures:
            raise FaultError(f"{len(failures)} fault(s) not cleared: {failures[0]}")
        return cleared

    def entries(self) -> list[Entry]:
        """Every fault, oldest first; a host's closed state wins over the controller's (its
        TTL heals there), and the controller's copy follows it."""
        by_id = {e.id: e for e in self.controller.entries()}
        for e in self.backend.host_entries():
            mine = by_id.get(e.id)
            if mine is None or (mine.open and not e.open):
                by_id[e.id] = e
                self.controller.put(e)
        return sorted(by_id.values(), key=lambda e: e.created_at)

    def active(self) -> list[Entry]:
        return [e for e in self.entries() if e.open]

    def residue(self) -> list[str]:
        """What faults left behind, one line each; empty means clean."""
        return self.backend.residue()

    def forget(self) -> list[str]:
        """Remove the ledgers once every fault in them is closed; what was removed.
        FaultError (nothing removed) when one is open: a ledger is what heals it."""
        return self.backend.forget()
