"""The fault ledger: what was applied where, and how to undo it, written before it happens.

One JSON file per testnet, kept twice: on the controller (next to the deployment record) and
on the target host (``/var/lib/shakedown/faults/<testnet>.json``). An entry goes intended ->
active -> cleared (or failed); its ``undo`` steps are plain data (``shakedown.faults.ops``),
so any process that can read the file can heal the fault: ``clear`` after the injector was
killed, or the detached TTL process with no controller alive. Writes are atomic under a lock.

    ledger = Ledger(path)
    entry = ledger.intend(kind="latency", target="node-200", params={...}, undo=[...])
    ledger.update(entry.id, state="active")
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

OPEN_STATES = ("intended", "active")


@dataclass(frozen=True)
class Entry:
    """One fault. ``tag`` names its artifacts (toxic names, iptables comments)."""

    id: str
    tag: str
    kind: str
    target: str
    params: dict[str, Any]
    undo: list[dict[str, Any]]
    mechanism: str = ""
    state: str = "intended"
    created_at: float = 0.0
    applied_at: float | None = None
    cleared_at: float | None = None
    expires_at: float | None = None
    error: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def summary(self) -> str:
        """``f-1a2b3c4d latency node-200 latency_ms=200 [active, expires in 41 s]``."""
        params = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()) if v != "")
        extra = f", expires in {self.expires_at - time.time():.0f} s" \
            if self.expires_at and self.open else ""
        return f"{self.id} {self.kind} {self.target} {params} [{self.state}{extra}]".replace(
            "  ", " ")


class Ledger:
    """A ledger file; every method re-reads it, so several processes may share it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[Entry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except ValueError as e:
            raise ValueError(f"fault ledger {self.path} is unreadable: {e}") from e
        return [Entry(**item) for item in raw]

    def get(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries() if e.id == entry_id), None)

    def intend(self, *, kind: str, target: str, params: dict[str, Any],
               undo: list[dict[str, Any]], mechanism: str = "", tag: str = "",
               expires_at: float | None = None) -> Entry:
        """Record a fault about to be applied; returns the new entry (state ``intended``)."""
        tag = tag or secrets.token_hex(4)
        entry = Entry(id=f"f-{tag}", tag=tag, kind=kind, target=target, params=params,
                      undo=undo, mechanism=mechanism, created_at=time.time(),
                      expires_at=expires_at)
        self.put(entry)
        return entry

    def put(self, entry: Entry) -> None:
        """Insert or replace ``entry`` (by id)."""
        with self._locked() as items:
            items[:] = [i for i in items if i["id"] != entry.id] + [asdict(entry)]

    def update(self, entry_id: str, **changes: Any) -> Entry | None:
        """Change fields of one entry; None when it is not in this ledger."""
        with self._locked() as items:
            for k, item in enumerate(items):
                if item["id"] == entry_id:
                    updated = replace(Entry(**item), **changes)
                    items[k] = asdict(updated)
                    return updated
        return None

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            items = [asdict(e) for e in self.entries()]
            yield items
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(items, indent=1, sort_keys=True) + "\n")
            os.replace(partial, self.path)


def host_ledger_dir() -> Path:
    """Where a Docker host keeps its ledgers: /var/lib/shakedown/faults, or the user's state."""
    from shakedown.faults.names import HOST_LEDGER_DIR

    system = Path(HOST_LEDGER_DIR)
    if os.access(system if system.exists() else system.parent.parent, os.W_OK):
        return system
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / \
        "shakedown/faults"


def merged(controller: Ledger, host: Ledger) -> list[Entry]:
    """Both ledgers as one, oldest first; the host's state wins (its TTL process heals)."""
    by_id = {e.id: e for e in controller.entries()}
    for e in host.entries():
        mine = by_id.get(e.id)
        by_id[e.id] = e if mine is None or not e.open or mine.open else mine
    return sorted(by_id.values(), key=lambda e: e.created_at)
