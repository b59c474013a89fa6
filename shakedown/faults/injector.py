"""Apply and clear faults on one deployed testnet, through both ledgers.

``apply`` validates everything first (kind, parameters, target), writes the entry with its
undo steps to the host and controller ledgers, then acts; if acting fails half-way, the undo
runs at once and the entry is marked failed, so nothing stays half-applied. ``clear`` replays
undo steps of open entries newest first and works from the ledgers alone.

    inj = Injector.for_testnet(testnet)
    entry = inj.apply("latency", "node-200", {"latency_ms": 200}, ttl=60)
    inj.clear(entry)
    inj.clear_all()
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, FaultError, NotFoundError
from shakedown.faults.kinds import KINDS, Plan
from shakedown.faults.ledger import Entry, Ledger, host_ledger_dir, merged
from shakedown.faults.ops import run_step
from shakedown.faults.targets import Targets
from shakedown.model import Testnet


class Injector:
    """Faults on one testnet: its targets and its two ledgers."""

    def __init__(self, testnet: Testnet, record: dict[str, Any], controller: Ledger,
                 host: Ledger) -> None:
        self.testnet = testnet
        self.record = record
        self.controller = controller
        self.host = host

    @classmethod
    def for_testnet(cls, testnet: Testnet) -> Injector:
        """The injector of a deployed testnet; NotFoundError when it has no record."""
        record = load_record(testnet.record_path)
        if record is None:
            raise NotFoundError(f"testnet {testnet.name} is not deployed (no record at "
                                f"{testnet.record_path}); run 'shakedown up' first")
        return cls(testnet, record, controller_ledger(testnet), host_ledger(testnet))

    def targets(self) -> Targets:
        return Targets.of(self.testnet, self.record)

    def apply(self, kind: str, target: str = "", params: Mapping[str, Any] | None = None,
              ttl: float | None = None) -> Entry:
        """Apply one fault; returns its ledger entry (active, or cleared for instant kinds)."""
        if kind not in KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        spec = KINDS[kind]
        if ttl is not None and ttl <= 0:
            raise ConfigError(f"ttl {ttl}: must be a positive number of seconds")
        values = spec.parse(params)
        target = target or spec.default_target
        targets = self.targets()
        services = targets.resolve(target, spec.roles)
        tag = secrets.token_hex(4)
        plan = spec.plan(targets, services, values, tag)  # may refuse: nothing written yet
        entry = self._intend(kind, target, values, ttl, tag, plan)
        try:
            for step in plan.apply:
                step() if callable(step) else run_step(step)
        except Exception as e:
            errors = _undo(plan.undo)
            self._record(entry.id, state="failed", error=str(e), cleared_at=time.time())
            rolled = "rolled back" if not errors else f"rollback failed too: {errors[0]}"
            raise FaultError(f"{kind} on {target}: {e} ({rolled})") from e
        now = time.time()
        if plan.instant:
            return self._record(entry.id, state="cleared", applied_at=now, cleared_at=now)
        entry = self._record(entry.id, state="active", applied_at=now)
        if ttl is not None:
            self._expire_later(entry)
        return entry

    def clear(self, entry: Entry | str) -> Entry:
        """Undo one fault; "already gone" counts as cleared. FaultError when a step fails."""
        entry_id = entry if isinstance(entry, str) else entry.id
        found = next((e for e in self.entries() if e.id == entry_id), None)
        if found is None:
            raise NotFoundError(f"no fault {entry_id} in the ledger of {self.testnet.name}")
        if not found.open:
            return found
        errors = _undo(found.undo)
        if errors:
            self._record(found.id, error="; ".join(errors))
            raise FaultError(f"{found.id} {found.kind} {found.target}: {errors[0]}")
        return self._record(found.id, state="cleared", cleared_at=time.time())

    def clear_all(self) -> list[Entry]:
        """Clear every open fault of this testnet, newest first; raise after trying all."""
        cleared, failures = [], []
        for entry in reversed(self.active()):
            try:
                cleared.append(self.clear(entry))
            except FaultError as e:
                failures.append(str(e))
        if failures:
            raise FaultError(f"{len(failures)} fault(s) not cleared: {failures[0]}")
        return cleared

    def entries(self) -> list[Entry]:
        """Every fault of this testnet, oldest first; the controller copy follows the host's."""
        entries = merged(self.controller, self.host)
        for e in entries:
            mine = self.controller.get(e.id)
            if mine is None or (mine.open and not e.open):
                self.controller.put(e)  # e.g. a TTL expiry the host recorded
        return entries

    def active(self) -> list[Entry]:
        return [e for e in self.entries() if e.open]

    def _intend(self, kind: str, target: str, values: dict[str, Any], ttl: float | None,
                tag: str, plan: Plan) -> Entry:
        """Both ledgers hold the fault and its undo before anything is touched."""
        expires = time.time() + ttl if ttl is not None else None
        entry = self.host.intend(kind=kind, target=target, params=values, undo=plan.undo,
                                 mechanism=plan.mechanism, tag=tag, expires_at=expires)
        self.controller.put(entry)
        return entry

    def _record(self, entry_id: str, **changes: Any) -> Entry:
        updated = self.host.update(entry_id, **changes)
        self.controller.update(entry_id, **changes)
        assert updated is not None, entry_id
        return updated

    def _expire_later(self, entry: Entry) -> None:
        """A detached process on this (the Docker) host heals the fault at its expiry."""
        log = self.host.path.with_suffix(".log")
        with open(log, "a") as out:
            subprocess.Popen([sys.executable, "-m", "shakedown.faults.expire",
                              str(self.host.path), entry.id],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True, close_fds=True)


def _undo(steps: list[dict[str, Any]]) -> list[str]:
    """Run every undo step, continuing past failures; the failures' messages."""
    errors = []
    for step in steps:
        try:
            run_step(step)
        except Exception as e:
            errors.append(f"{step['op']}: {e}")
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
    errors = _undo(entry.undo)
    if errors:
        return ledger.update(entry_id, error="; ".join(errors))
    return ledger.update(entry_id, state="cleared", cleared_at=time.time(),
                         notes={**entry.notes, "cleared_by": by})



