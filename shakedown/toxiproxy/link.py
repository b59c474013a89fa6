"""The data path: one proxied connection, its two sockets (sides) and two directions (links).

Each socket is an asyncio ``Protocol`` (a side): what it reads goes straight to its link from
the event loop's read callback. With no toxics on a link, the link writes the chunk to the
other socket right there: one read, one write, no task switch and no queue per chunk (what
keeps the proxy's added latency small). With toxics, chunks are stamped with their read time
and queued for a worker that passes them through the stages, so reading goes on while a stage
waits (latency applies per chunk, not cumulatively). When the toxics are gone and the queue is
empty, the fast path resumes on the same connection.

Back-pressure: a link stops reading its source while the destination's send buffer is over
``HIGH_WATER`` or its queue is over ``QUEUE_LIMIT``, and reads again when they drain.

Closing follows toxiproxy: when a direction's source ends, its destination socket is closed
after the stages saw the end (slow_close); the other direction then ends in turn.

Each link adds the bytes it reads and writes to its tally (``metrics.ByteCounters``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from shakedown.toxiproxy.metrics import RECEIVED, SENT
from shakedown.toxiproxy.model import UPSTREAM, Toxic
from shakedown.toxiproxy.stages import Stage, make_stage

if TYPE_CHECKING:
    from shakedown.toxiproxy.proxy import Proxy

log = logging.getLogger(__name__)

HIGH_WATER = 1 << 20  # destination bytes buffered before reading the source pauses
QUEUE_LIMIT = 4 << 20  # bytes queued ahead of the toxics before reading pauses


class Side(asyncio.Protocol):
    """One socket of a proxied connection. It reads nothing until its link starts (the
    kernel holds what arrives meanwhile); ``on_made`` hears of an accepted socket."""

    transport: asyncio.Transport  # set by connection_made, the first callback

    def __init__(self, on_made: Callable[[Side], None] | None = None) -> None:
        self.on_made = on_made
        self.feeds: Link | None = None  # the link reading this socket
        self.fed_by: Link | None = None  # the link writing to it
        self.lost = False
        self.full = False  # send buffer over its high-water mark
        self.drained: asyncio.Future[None] | None = None
        self.early: list[bytes] = []  # read before its link started

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.feeds is not None and self.feeds.running:
            self.feeds.received(data)
        else:  # uvloop reads once connected even when paused in connection_made
            self.early.append(data)
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.data_received(b"")
        return True  # keep sending the other direction until its link closes this socket

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.resume_writing()
        if self.feeds is not None:
            self.feeds.received(b"")

    def pause_writing(self) -> None:
        self.full = True
        if self.fed_by is not None:
            self.fed_by.hold("peer")

    def resume_writing(self) -> None:
        self.full = False
        if self.drained is not None:
            _resolve(self.drained, None)
            self.drained = None
        if self.fed_by is not None:
            self.fed_by.release("peer")

    async def drain(self) -> None:
        """Until the send buffer is below its low-water mark (or the socket is gone)."""
        if self.full and not self.lost:
            if self.drained is None:
                self.drained = asyncio.get_running_loop().create_future()
            await self.drained

    def writable(self) -> bool:
        return not self.lost and not self.transport.is_closing()


class Link:
    """One direction of a connection: source socket, toxic stages, destination socket."""

    def __init__(
        self,
        conn: Connection,
        direction: str,
        src: Side,
        dst: Side,
        toxics: list[Toxic],
        tally: list[int],
    ) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        src.feeds, dst.fed_by = self, self
        self.tally = tally  # [received, sent] bytes, read by /metrics
        self.running = False  # False while the toxics present at accept are attached
        self.ended = False  # the source ended (or the link was cancelled)
        self.held = {"start"}  # why reading the source is paused
        self.loop = asyncio.get_running_loop()
        self.stages: list[Stage] = []
        self.slow = False  # some stage applies: chunks go through the queue and the worker
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.waiters: set[asyncio.Future[bool]] = set()
        self.worker: asyncio.Task[None] | None = None
        for toxic in toxics:
            self.add(toxic)

    def now(self) -> float:
        """Loop time in seconds; chunks are stamped with it."""
        return self.loop.time()

    def call_later(self, delay: float, callback: Any) -> asyncio.TimerHandle:
        """Schedule ``callback`` on the loop (toxic timers)."""
        return self.loop.call_later(delay, callback)

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the toxics changed first, so the stage re-reads them."""
        if seconds <= 0:
            return True
        fut: asyncio.Future[bool] = self.loop.create_future()
        timer = self.loop.call_later(seconds, _resolve, fut, True)
        self.waiters.add(fut)
        try:
            return await fut
        finally:
            timer.cancel()
            self.waiters.discard(fut)

    def add(self, toxic: Toxic) -> None:
        """Append a toxic's stage; it applies to the next chunk that reaches it."""
        stage = make_stage(toxic, self)
        self.stages = [*self.stages, stage]
        stage.attached()
        self._changed()

    def update(self, toxic: Toxic) -> None:
        """Give the named stage its new settings and wake any wait that depends on them."""
        for stage in self.stages:
            if stage.toxic.name == toxic.name:
                stage.updated(toxic)
        self._changed()

    def remove(self, name: str) -> None:
        """Drop the named stage; data it holds goes on at once (timeout closes instead)."""
        gone = [s for s in self.stages if s.toxic.name == name]
        self.stages = [s for s in self.stages if s.toxic.name != name]
        for stage in gone:
            stage.detached()
        self._changed()

    def start(self) -> None:
        """Start copying (a source that ended before now ends the link at once)."""
        self.running = True
        early, self.src.early = self.src.early, []
        for data in early:
            self.received(data)
        if self.src.lost:
            self.received(b"")
        self.release("start")

    def cancel(self) -> None:
        """Stop reading and stop the worker, except when it is the caller (a stage closing
        its own connection)."""
        self.ended = True
        if self.worker is not None and self.worker is not asyncio.current_task():
            self.worker.cancel()
        self._changed()

    def hold(self, why: str) -> None:
        """Stop reading the source until ``release(why)``."""
        if not self.held:
            self.src.transport.pause_reading()
        self.held.add(why)

    def release(self, why: str) -> None:
        self.held.discard(why)
        if not self.held and not self.ended and not self.src.lost:
            self.src.transport.resume_reading()

    def received(self, data: bytes) -> None:
        """A chunk from the source (empty: it ended), on the loop's read callback."""
        if self.ended:
            return
        try:
            self.tally[RECEIVED] += len(data)
            if self.slow or self.worker is not None:
                self._enqueue(data)
                if not data:
                    self.ended = True
                return
            if not data or not self.dst.writable():
                self.ended = True
                self.hold("ended")
                self._finish()
                return
            self.dst.transport.write(data)
            self.tally[SENT] += len(data)
        except Exception as e:  # a bug of ours: never leave the connection half-open
            _log_unexpected(e, self.direction)
            self.conn.abort()

    def _enqueue(self, data: bytes) -> None:
        self.queue.append((self.now(), data or None))
        self.queued += len(data)
        if self.worker is None:
            self.worker = asyncio.ensure_future(self._work())
        if self.queued > QUEUE_LIMIT:
            self.hold("queue")

    async def _work(self) -> None:
        try:
            while self.queue and not self.conn.closed:
                ts, data = self.queue.popleft()
                if data is None:
                    for stage in self.stages:
                        if stage.active and not stage.removed:
                            await stage.eof()
                    self._finish()
                    return
                self.queued -= len(data)
                if self.queued <= QUEUE_LIMIT // 2:
                    self.release("queue")
                await self._through(self.stages, 0, data, ts)
        except Exception as e:
            _log_unexpected(e, self.direction)
            self.conn.abort()
        finally:
            self.worker = None

    async def _through(self, stages: list[Stage], i: int, data: bytes, ts: float) -> None:
        while i < len(stages) and (stages[i].removed or not stages[i].active):
            i += 1
        if i < len(stages):

            async def emit(part: bytes, when: float) -> None:
                await self._through(stages, i + 1, part, when)

            await stages[i].push(data, ts, emit)
            return
        if self.conn.closed or not self.dst.writable():
            return
        self.dst.transport.write(data)
        self.tally[SENT] += len(data)
        await self.dst.drain()

    def _finish(self) -> None:
        self.dst.transport.close()
        self.conn.link_done()

    def _changed(self) -> None:
        self.slow = any(s.active for s in self.stages)
        for fut in list(self.waiters):
            _resolve(fut, False)


class Connection:
    """A client socket and its upstream socket, joined by two links."""

    def __init__(
        self,
        owner: Proxy,
        client: Side,
        upstream: Side,
        toxics: list[Toxic],
        tallies: dict[str, list[int]],
    ) -> None:
        self.owner = owner
        self.closed = False
        self.done = 0
        self.sides = (client, upstream)
        for side in self.sides:
            side.transport.set_write_buffer_limits(high=HIGH_WATER)
        ups = [t for t in toxics if t.direction == UPSTREAM]
        downs = [t for t in toxics if t.direction != UPSTREAM]
        self.links = {
            "upstream": Link(self, "upstream", client, upstream, ups, tallies["upstream"]),
            "downstream": Link(self, "downstream", upstream, client, downs,
                               tallies["downstream"]),
        }

    def start(self) -> None:
        """Start both directions."""
        for link in self.links.values():
            link.start()

    def link_done(self) -> None:
        """One direction finished; when both did, the proxy forgets the connection."""
        self.done += 1
        if self.done >= 2:
            self._forget()

    def close(self) -> None:
        """Close both sockets after flushing what was written (timeout, limit_data)."""
        if self._stop():
            for side in self.sides:
                side.transport.close()

    def abort(self) -> None:
        """Close both sockets now, dropping unsent data (disable, delete, broken peer)."""
        if self._stop():
            for side in self.sides:
                side.transport.abort()

    def reset(self) -> None:
        """Reset both sides: SO_LINGER 0 then close, so each peer gets a TCP RST."""
        if self._stop():
            linger = struct.pack("ii", 1, 0)
            for side in self.sides:
                sock = side.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    except OSError:
                        pass
                side.transport.abort()

    def _stop(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        for link in self.links.values():
            link.cancel()
        self._forget()
        return True

    def _forget(self) -> None:
        for link in self.links.values():
            for stage in link.stages:
                stage.release()
        self.owner.forget(self)


def _log_unexpected(error: Exception, direction: str) -> None:
    if isinstance(error, OSError):
        log.debug("%s link: %s", direction, error)
    else:
        log.exception("%s link failed", direction, exc_info=error)


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
