"""Signature checks off the event loop: envelopes are opened in a pool of worker processes.

Opening an envelope is two secp256k1 recoveries for a replicated one (one for a published
payer envelope), about 60 µs each, in small steps of Python and C that hold the GIL between
them: in the event loop they would stall every stream, query and health check of the node
for as long as a batch takes. Workers are processes, one per core unless told; a batch is
split over them.

The workers are forked when the Checker is made, so make it before the event loop, gRPC or
any thread starts (``refnode.node.main`` does); they leave when the node does, however it
ends. Should a worker die, the node goes on opening envelopes in its loop, as before.

Each envelope comes back opened, or as the ``InvalidEnvelope`` it raised, in order, so the
caller refuses a batch exactly as if it had opened the envelopes itself.

    checker = Checker()            # before asyncio.run
    opened = await checker.open_originators(response.envelopes)
    payers = await checker.open_payers(request.payer_envelopes)
    checker.close()
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from refnode.envelopes import (
    InvalidEnvelope,
    OriginatorEnvelope,
    PayerEnvelope,
    open_payer_envelope,
    parse_originator_bytes,
)
from refnode.proto import refnode_pb2 as pb

log = logging.getLogger("refnode.checker")

MIN_SPLIT = 64  # envelopes per worker at least: below this a batch goes to one worker

T = TypeVar("T")


def open_originators(blobs: list[bytes]) -> list[OriginatorEnvelope | InvalidEnvelope]:
    """Each serialized originator envelope opened, or the InvalidEnvelope it raised."""
    found: list[OriginatorEnvelope | InvalidEnvelope] = []
    for blob in blobs:
        try:
            found.append(parse_originator_bytes(blob))
        except InvalidEnvelope as e:
            found.append(e)
    return found


def open_payers(blobs: list[bytes]) -> list[PayerEnvelope | InvalidEnvelope]:
    """Each serialized payer envelope opened, or the InvalidEnvelope it raised."""
    found: list[PayerEnvelope | InvalidEnvelope] = []
    for blob in blobs:
        try:
            found.append(open_payer_envelope(pb.PayerEnvelope.FromString(blob)))
        except InvalidEnvelope as e:
            found.append(e)
    return found


def _leave_with_parent(alive_r: int, alive_w: int) -> None:
    """Worker start: exit as soon as the node is gone (its end of the pipe closes)."""
    os.close(alive_w)

    def watch() -> None:
        os.read(alive_r, 1)  # returns only at EOF: no process holds the write end any more
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


class Checker:
    """A pool of ``workers`` processes (default: one per core) that open envelopes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        if self.workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return  # one core: the loop opens envelopes itself
        alive_r, self._alive_w = os.pipe()
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(
            "fork"), initializer=_leave_with_parent, initargs=(alive_r, self._alive_w))
        self._pool.submit(os.getpid).result()  # fork every worker now, from this thread
        os.close(alive_r)

    @property
    def pids(self) -> list[int]:
        """The worker processes (none when the loop opens envelopes itself)."""
        return sorted(self._pool._processes) if self._pool is not None else []

    async def open_originators(self, envelopes: Sequence[pb.OriginatorEnvelope]
                               ) -> list[OriginatorEnvelope | InvalidEnvelope]:
        """Each envelope opened (both signers recovered), or the InvalidEnvelope it raised."""
        return await self._map(open_originators, [e.SerializeToString() for e in envelopes])

    async def open_payers(self, envelopes: Sequence[pb.PayerEnvelope]
                          ) -> list[PayerEnvelope | InvalidEnvelope]:
        """Each payer envelope opened (payer recovered), or the InvalidEnvelope it raised."""
        return await self._map(open_payers, [e.SerializeToString() for e in envelopes])

    async def _map(self, fn: Callable[[list[bytes]], list[T]], blobs: list[bytes]
                   ) -> list[T]:
        if self._pool is None or not blobs:
            return fn(blobs)
        parts = max(1, min(self.workers, len(blobs) // MIN_SPLIT))
        size = -(-len(blobs) // parts)
        loop = asyncio.get_running_loop()
        try:
            done = await asyncio.gather(*(
                asyncio.wrap_future(self._pool.submit(fn, blobs[i:i + size]), loop=loop)
                for i in range(0, len(blobs), size)))
        except BrokenProcessPool:  # a worker was killed: no new fork from a running node
            log.error("a signature worker died; opening envelopes in the event loop from now")
            self.close()
            return fn(blobs)
        return [item for part in done for item in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            os.close(self._alive_w)
