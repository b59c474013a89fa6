"""shakedown's toxiproxy-compatible server: the HTTP API and the proxies on one asyncio loop.

Run it as ``python -m shakedown.toxiproxy -host 127.0.0.1 -port 8474`` (toxiproxy-server's
flags), or in-process (tests, benchmarks) with ``ServerThread``, which takes the same metrics
switches (``proxy_metrics=True``, ``runtime_metrics=True``)::

    with ServerThread() as srv:
        ToxiproxyClient(srv.url).create_proxy("pg", "127.0.0.1:0", "127.0.0.1:5432")
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from types import TracebackType

import uvloop

from shakedown.toxiproxy.api import Api
from shakedown.toxiproxy.httpd import Request, serve

log = logging.getLogger(__name__)


def new_loop() -> asyncio.AbstractEventLoop:
    """The proxy's event loop: uvloop's (libuv), which cuts the added latency of a proxied
    round trip by about a third against asyncio's own (docs/benchmarks.md)."""
    return uvloop.new_event_loop()


class ToxiproxyServer:
    """The API listener and the proxies it manages; all state lives on one event loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        proxy_metrics: bool = False,
        runtime_metrics: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.api = Api(proxy_metrics=proxy_metrics, runtime_metrics=runtime_metrics)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The API's base URL, with the bound port once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the API port (port 0 picks a free one and updates ``port``)."""
        self._server = await asyncio.start_server(
            self._client, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("toxiproxy API listening on %s", self.url)

    async def populate_file(self, path: Path) -> int:
        """Create the proxies listed in a toxiproxy ``-config`` JSON file; returns the count."""
        body = path.read_bytes()
        response = await self.api.handle(Request("POST", "/populate", {}, body))
        reply = json.loads(response.body)
        if response.status != 201:
            raise ValueError(f"{path}: {reply['error']}")
        return len(reply["proxies"] or [])

    async def serve_forever(self) -> None:
        """Serve until cancelled, then stop every proxy."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop accepting API clients and stop every proxy."""
        self.api.close()
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve(reader, writer, self.api.handle)


class ServerThread:
    """A ToxiproxyServer on its own event loop in a daemon thread; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **metrics: bool) -> None:
        self.server = ToxiproxyServer(host, port, **metrics)
        self._loop = new_loop()
        self._thread = threading.Thread(target=self._run, name="toxiproxy", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The API's base URL."""
        return self.server.url

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start the thread and wait until the API port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"toxiproxy server thread not ready after {timeout}s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its proxies, then the loop; safe to call twice."""
        if self._thread.is_alive() and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as e:  # reported to start()'s caller
            self._error = e
            self._ready.set()
            return
        self._task = self._loop.create_task(self.server.serve_forever())
        self._ready.set()
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            _cancel_all(self._loop)
            self._loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the connection tasks left on a stopping loop, so none is destroyed pending."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
