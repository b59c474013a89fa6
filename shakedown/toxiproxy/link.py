"""The data path: one proxied connection and its two directions (links).

A link reads its source and writes its destination. With no toxics on it, it copies chunks
straight through (one read, one write, no queue: this is what keeps the proxy's overhead
small). With toxics, chunks are stamped with their read time and queued for a worker that
passes them through the stages, so reading goes on while a stage waits (latency applies per
chunk, not cumulatively). When the toxics are gone and the queue is empty, the fast path
resumes on the same connection.

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
from typing import TYPE_CHECKING, Any

from shakedown.toxiproxy.metrics import RECEIVED, SENT
from shakedown.toxiproxy.model import UPSTREAM, Toxic
from shakedown.toxiproxy.stages import Stage, make_stage

if TYPE_CHECKING:
    from shakedown.toxiproxy.proxy import Proxy

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # largest read per wakeup
HIGH_WATER = 1 << 20  # destination bytes buffered before waiting for the peer
QUEUE_LIMIT = 4 << 20  # bytes queued ahead of the toxics before reading pauses
STREAM_LIMIT = 1 << 20  # StreamReader buffer


class Link:
    """One direction of a connection: source reader, toxic stages, destination writer."""

    def __init__(
        self,
        conn: Connection,
        direction: str,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        toxics: list[Toxic],
        tally: list[int],
    ) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.tally = tally  # [received, sent] bytes, read by /metrics
        self.running = False  # False while the toxics present at accept are attached
        self.loop = asyncio.get_running_loop()
        self.stages: list[Stage] = []
        self.slow = False  # some stage applies: chunks go through the queue and the worker
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.room: asyncio.Future[None] | None = None
        self.waiters: set[asyncio.Future[bool]] = set()
        self.worker: asyncio.Task[None] | None = None
        self.pump_task: asyncio.Task[None] | None = None
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
        """Start copying."""
        self.running = True
        self.pump_task = asyncio.ensure_future(self._pump())

    def cancel(self) -> None:
        """Stop both tasks, except the one calling (a stage closing its own connection)."""
        current = asyncio.current_task()
        for task in (self.pump_task, self.worker):
            if task is not None and task is not current:
                task.cancel()
        self._changed()

    async def _pump(self) -> None:
        src, dst = self.src, self.dst
        try:
            while True:
                try:
                    data = await src.read(CHUNK)
                except OSError:
                    data = b""
                self.tally[RECEIVED] += len(data)
                if self.slow or self.worker is not None:
                    await self._enqueue(data)
                    if not data:
                        return
                    continue
                if not data or dst.transport.is_closing():
                    break
                dst.write(data)
                self.tally[SENT] += len(data)
                if dst.transport.get_write_buffer_size() > HIGH_WATER:
                    await dst.drain()
            await self._finish()
        except Exception as e:  # a broken peer, or a bug of ours: never leave it half-open
            _log_unexpected(e, self.direction)
            self.conn.abort()

    async def _enqueue(self, data: bytes) -> None:
        self.queue.append((self.now(), data or None))
        self.queued += len(data)
        if self.worker is None:
            self.worker = asyncio.ensure_future(self._work())
        if self.queued > QUEUE_LIMIT:
            self.room = self.loop.create_future()
            await self.room

    async def _work(self) -> None:
        try:
            while self.queue and not self.conn.closed:
                ts, data = self.queue.popleft()
                if data is None:
                    for stage in self.stages:
                        if stage.active and not stage.removed:
                            await stage.eof()
                    await self._finish()
                    return
                self.queued -= len(data)
                if self.room is not None and self.queued <= QUEUE_LIMIT // 2:
                    _resolve(self.room, None)
                    self.room = None
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
        if self.conn.closed or self.dst.transport.is_closing():
            return
        self.dst.write(data)
        self.tally[SENT] += len(data)
        if self.dst.transport.get_write_buffer_size() > HIGH_WATER:
            await self.dst.drain()

    async def _finish(self) -> None:
        self.dst.close()
        self.conn.link_done()

    def _changed(self) -> None:
        self.slow = any(s.active for s in self.stages)
        for fut in list(self.waiters):
            _resolve(fut, False)


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(
        self,
        owner: Proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        toxics: list[Toxic],
        tallies: dict[str, list[int]],
    ) -> None:
        self.owner = owner
        self.closed = False
        self.done = 0
        self.writers = (client[1], upstream[1])
        for writer in self.writers:
            writer.transport.set_write_buffer_limits(high=HIGH_WATER)
        ups = [t for t in toxics if t.direction == UPSTREAM]
        downs = [t for t in toxics if t.direction != UPSTREAM]
        self.links = {
            "upstream": Link(self, "upstream", client[0], upstream[1], ups, tallies["upstream"]),
            "downstream": Link(
                self, "downstream", upstream[0], client[1], downs, tallies["downstream"]
            ),
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
            for writer in self.writers:
                writer.close()

    def abort(self) -> None:
        """Close both sockets now, dropping unsent data (disable, delete, broken peer)."""
        if self._stop():
            for writer in self.writers:
                writer.transport.abort()

    def reset(self) -> None:
        """Reset both sides: SO_LINGER 0 then close, so each peer gets a TCP RST."""
        if self._stop():
            linger = struct.pack("ii", 1, 0)
            for writer in self.writers:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    except OSError:
                        pass
                writer.transport.abort()

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
