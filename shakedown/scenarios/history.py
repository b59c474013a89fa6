"""The run's history: one JSONL file of every operation, fault and observation, in order.

Each line is one event, Jepsen-style: ``type`` is ``invoke`` (an operation starts), ``ok``
(it completed), ``fail`` (it definitely did not happen), ``info`` (unknown outcome, or an
observation); ``f`` names the operation (publish, fault, heal, action, chain, sample, phase,
ramp, settle); ``op`` pairs an invoke with its completion; ``t`` is seconds on the monotonic
clock since the run started and ``wall`` the epoch time. The report is built from it alone.

    history = History(run_dir / "history.jsonl")
    op = history.invoke("publish", target="node-100", n=5)
    history.complete("publish", op, "ok", acks=[[100, 1, "ab..", "cd.."]])
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class History:
    """Append-only, thread-safe; every event is flushed as written (a killed run keeps it)."""

    def __init__(self, path: Path, started: float | None = None):
        self.path = path
        self.started = time.monotonic() if started is None else started
        self._lock = threading.Lock()
        self._ops = itertools.count(1)
        self._index = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def now(self) -> float:
        """Seconds since the run started, on the history's clock."""
        return time.monotonic() - self.started

    def at(self, monotonic: float) -> float:
        """A ``time.monotonic()`` reading on the history's clock."""
        return monotonic - self.started

    def event(self, type_: str, f: str, **value: Any) -> dict[str, Any]:
        """Write one event; returns it (with its index and times)."""
        with self._lock:
            self._index += 1
            entry = {"i": self._index, "t": round(self.now(), 4), "wall": round(time.time(), 4),
                     "type": type_, "f": f, **value}
            if not self._file.closed:
                self._file.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
                self._file.flush()
            return entry

    def invoke(self, f: str, **value: Any) -> int:
        """Start an operation; returns its ``op`` number for :meth:`complete`."""
        op = next(self._ops)
        self.event("invoke", f, op=op, **value)
        return op

    def complete(self, f: str, op: int, type_: str, **value: Any) -> dict[str, Any]:
        """Finish operation ``op`` of kind ``f`` as ``ok``, ``fail`` or ``info``."""
        return self.event(type_, f, op=op, **value)

    def info(self, f: str, **value: Any) -> dict[str, Any]:
        return self.event("info", f, **value)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every event of a history file, in order (a torn last line is skipped)."""
    return list(iter_history(path))


def iter_history(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except ValueError:
                continue
