"""The live tail: what a node just stored, handed to every subscriber that follows it.

After each commit (its own publishes and what it replicated alike) the writer hands the new
envelopes to ``Fanout.deliver``. Each subscriber has a bounded buffer of ``buffer``
envelopes. Delivery never waits: a subscriber whose buffer would overflow is marked behind
and its buffer emptied; its stream then reads the database again at its own pace, with
gRPC's flow control as its backpressure. A subscriber that stops reading so costs at most its
buffer and its stream's window, and stalls no one else.

``blocking=True`` is the bug on purpose (REFNODE_BLOCKING_FANOUT=1): delivery waits for room
in every subscriber's buffer, so one subscriber that stops reading stalls the writer, and
with it the publish path and every other subscriber.

    fanout = Fanout(buffer=1000)
    with fanout.listen({100}) as live:
        batches = await live.take(timeout=5)      # [] idle; raises Behind if it overflowed
    await fanout.deliver(100, [(sequence_id, blob), ...])   # from the writer, after a commit
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("refnode.fanout")


class Behind(Exception):
    """The subscriber's buffer overflowed: what it missed is in the database."""


@dataclass(frozen=True)
class Batch:
    originator: int
    envelopes: tuple[tuple[int, bytes], ...]   # (sequence id, stored envelope), ascending


class Listener:
    """One subscriber's buffer."""

    def __init__(self, originators: frozenset[int], buffer: int, fanout: Fanout):
        self.originators = originators
        self.buffer = buffer
        self.behind = False
        self.fanout = fanout
        self._batches: deque[Batch] = deque()
        self._size = 0
        self._changed = asyncio.Event()   # something to take, or room to put

    def offer(self, batch: Batch) -> None:
        """Buffer ``batch`` now, or fall behind (empty the buffer) if it does not fit."""
        if self._size + len(batch.envelopes) > self.buffer:
            self.reset()
            self.behind = True
            self.fanout.times_behind += 1
        else:
            self._push(batch)

    async def put(self, batch: Batch) -> None:
        """Buffer ``batch``, waiting for room (the blocking fanout's way)."""
        while self._size and self._size + len(batch.envelopes) > self.buffer:
            self._changed.clear()
            await self._changed.wait()
        self._push(batch)

    def _push(self, batch: Batch) -> None:
        self._batches.append(batch)
        self._size += len(batch.envelopes)
        self._changed.set()

    def reset(self) -> None:
        """Forget what is buffered and that it fell behind (before reading the database)."""
        self._batches.clear()
        self._size = 0
        self.behind = False
        self._changed.set()

    async def take(self, timeout: float) -> list[Batch]:
        """Everything buffered, once there is some ([] after ``timeout``); Behind if the
        buffer overflowed since the last reset."""
        if not self._batches and not self.behind:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return []
        if self.behind:
            raise Behind(f"more than {self.buffer} envelopes waited for this subscriber")
        taken = list(self._batches)
        self._batches.clear()
        self._size = 0
        self._changed.set()
        return taken


class Fanout:
    def __init__(self, buffer: int, blocking: bool = False):
        self.buffer = buffer
        self.blocking = blocking
        self.times_behind = 0  # how often a listener overflowed, since the node started
        self._listeners: set[Listener] = set()

    @contextmanager
    def listen(self, originators: Iterable[int]) -> Iterator[Listener]:
        """A buffer that receives every batch of ``originators`` delivered while it lives."""
        listener = Listener(frozenset(originators), self.buffer, self)
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)

    async def deliver(self, originator: int, envelopes: list[tuple[int, bytes]]) -> None:
        """Hand a committed batch of ``originator``'s (sequence id, envelope) to every
        listener of ``originator``."""
        if not envelopes:
            return
        batch = Batch(originator, tuple(envelopes))
        for listener in list(self._listeners):
            if originator not in listener.originators:
                continue
            if self.blocking:
                await listener.put(batch)
            else:
                listener.offer(batch)
