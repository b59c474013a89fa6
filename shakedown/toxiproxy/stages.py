"""What each toxic does to one direction of one connection.

A stage is a toxic attached to a link (one direction of one proxied connection). It receives
chunks with the time they were read and passes them on through ``emit``, possibly later, in
pieces, or not at all; ``eof`` runs when the source closed. Whether the toxic affects this
connection at all (``toxicity``) is decided once per connection, and again on update.

Stages wait through ``Link.pause``, which returns early when the toxics change, so removing
or updating a toxic takes effect on data already in flight.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from shakedown.toxiproxy.model import Toxic

if TYPE_CHECKING:
    from shakedown.toxiproxy.link import Link

Emit = Callable[[bytes, float], Awaitable[None]]


class Stage:
    """A toxic that passes data through unchanged (``noop``); the base of the others."""

    def __init__(self, toxic: Toxic, link: Link) -> None:
        self.toxic = toxic
        self.link = link
        self.removed = False
        self.active = _roll(toxic.toxicity)

    @property
    def attrs(self) -> dict[str, int]:
        """The toxic's current attributes (updates replace the toxic)."""
        return self.toxic.attributes

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        """Pass one chunk read at loop time ``ts`` on to the next stage."""
        await emit(data, ts)

    async def eof(self) -> None:
        """The source closed; runs before the destination is closed."""

    def attached(self) -> None:
        """The stage joined a link (at connect, or live); start timers here."""

    def detached(self) -> None:
        """The toxic was removed from the proxy."""
        self.removed = True

    def updated(self, toxic: Toxic) -> None:
        """The toxic's attributes or toxicity changed; re-decide whether it applies."""
        self.toxic = toxic
        self.active = _roll(toxic.toxicity)

    def release(self) -> None:
        """The connection is gone; drop timers."""


class Latency(Stage):
    """Delays each chunk by ``latency`` ms +/- ``jitter`` ms, counted from when it was read."""

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        due = ts
        while not self.removed and self.active:
            jitter = self.attrs["jitter"]
            delay = self.attrs["latency"] + (random.randint(-jitter, jitter) if jitter > 0 else 0)
            due = ts + delay / 1000
            if await self.link.pause(due - self.link.now()):
                break
        await emit(data, max(ts, due))


class Bandwidth(Stage):
    """Limits throughput to ``rate`` KB/s (1 KB = 1000 bytes), in pieces of 100 ms at most."""

    def __init__(self, toxic: Toxic, link: Link) -> None:
        super().__init__(toxic, link)
        self.free_at = 0.0

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        view = memoryview(data)
        while view:
            rate = self.attrs["rate"]
            if self.removed or not self.active or rate <= 0:
                await emit(bytes(view), ts)
                return
            piece = view[: rate * 100]
            start = max(self.link.now(), self.free_at)
            self.free_at = start + len(piece) / (rate * 1000)
            if not await self.link.pause(self.free_at - self.link.now()):
                self.free_at = self.link.now()
                continue
            view = view[len(piece) :]
            await emit(bytes(piece), ts)


class SlowClose(Stage):
    """Holds the close of the connection for ``delay`` ms after the source closed."""

    async def eof(self) -> None:
        due = self.link.now() + self.attrs["delay"] / 1000
        while not self.removed and self.active:
            if await self.link.pause(due - self.link.now()):
                return
            due = self.link.now() + self.attrs["delay"] / 1000


class Timeout(Stage):
    """Drops all data; closes the connection after ``timeout`` ms (0: never) or on removal."""

    timer: object = None

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        return None

    def attached(self) -> None:
        ms = self.attrs["timeout"]
        if self.active and ms > 0:
            self.timer = self.link.call_later(ms / 1000, self.link.conn.close)

    def detached(self) -> None:
        super().detached()
        self._cancel()
        if self.active:
            self.link.conn.close()

    def updated(self, toxic: Toxic) -> None:
        self._cancel()
        super().updated(toxic)
        self.attached()

    def release(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        cancel = getattr(self.timer, "cancel", None)
        if cancel is not None:
            cancel()
        self.timer = None


class ResetPeer(Stage):
    """On the first data (or close), waits ``timeout`` ms then resets both sides (TCP RST).

    As in toxiproxy, only a connection accepted while the toxic existed is reset (its sockets
    got SO_LINGER 0 at accept); one already open when the toxic was added is closed with FIN.
    """

    def __init__(self, toxic: Toxic, link: Link) -> None:
        super().__init__(toxic, link)
        self.at_accept = not link.running

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        await self._reset()

    async def eof(self) -> None:
        await self._reset()

    async def _reset(self) -> None:
        due = self.link.now() + self.attrs["timeout"] / 1000
        while self.link.now() < due:
            await self.link.pause(due - self.link.now())
        if self.at_accept:
            self.link.conn.reset()
        else:
            self.link.conn.close()


class Slicer(Stage):
    """Cuts each chunk into ``average_size`` +/- ``size_variation`` byte pieces, ``delay`` µs
    apart."""

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        avg, var = self.attrs["average_size"], self.attrs["size_variation"]
        if avg <= 0:
            await emit(data, ts)
            return
        view = memoryview(data)
        for start, end in _slices(len(data), avg, max(0, min(var, avg - 1))):
            await emit(bytes(view[start:end]), ts)
            if end < len(data) and not await self.link.pause(self.attrs["delay"] / 1e6):
                if self.removed or not self.active:
                    await emit(bytes(view[end:]), ts)
                    return


class LimitData(Stage):
    """Passes ``bytes`` bytes in total on this connection, then closes it."""

    def __init__(self, toxic: Toxic, link: Link) -> None:
        super().__init__(toxic, link)
        self.sent = 0

    async def push(self, data: bytes, ts: float, emit: Emit) -> None:
        left = max(0, self.attrs["bytes"] - self.sent)
        if left:
            part = data[:left]
            self.sent += len(part)
            await emit(part, ts)
        if self.sent >= self.attrs["bytes"]:
            self.link.conn.close()


STAGES: dict[str, type[Stage]] = {
    "noop": Stage,
    "latency": Latency,
    "bandwidth": Bandwidth,
    "slow_close": SlowClose,
    "timeout": Timeout,
    "reset_peer": ResetPeer,
    "slicer": Slicer,
    "limit_data": LimitData,
}


def make_stage(toxic: Toxic, link: Link) -> Stage:
    """The stage for ``toxic`` on ``link``; model.py has already checked the type."""
    return STAGES[toxic.type](toxic, link)


def _roll(toxicity: float) -> bool:
    return random.random() < toxicity


def _slices(total: int, avg: int, var: int) -> Iterator[tuple[int, int]]:
    start = 0
    while start < total:
        size = avg + (random.randint(-var, var) if var else 0)
        end = min(total, start + max(1, size))
        yield start, end
        start = end
