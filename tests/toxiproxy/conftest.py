"""Fixtures for the toxiproxy server tests: our server in-process, upstreams on loopback.

Everything listens on 127.0.0.1 with port 0. The server runs on its own event loop thread
(``ServerThread``); upstreams are small threaded socket servers, so what the tests observe is
real TCP through the proxy.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from shakedown.toxiproxy.client import Proxy, ToxiproxyClient
from shakedown.toxiproxy.server import ServerThread

Handler = Callable[[socket.socket], None]
IO_TIMEOUT = 10.0  # no socket call in these tests may block longer


class Upstream:
    """A threaded TCP server on 127.0.0.1 running ``handler`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting (shutdown wakes the accept call)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def echo(conn: socket.socket) -> None:
    """Send back whatever arrives, until the peer closes."""
    while data := conn.recv(65536):
        conn.sendall(data)


def greet_and_close(conn: socket.socket) -> None:
    """Say hello and close at once (for slow_close)."""
    conn.sendall(b"hello")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """Our toxiproxy server on a free port, for the whole module."""
    with ServerThread("127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
def api(server: ServerThread) -> Iterator[ToxiproxyClient]:
    """A client; every proxy is deleted after the test so tests stay independent."""
    client = ToxiproxyClient(server.url)
    yield client
    for name in client.proxies():
        client.delete_proxy(name, missing_ok=True)


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[Upstream]:
    """An echo server."""
    upstream = Upstream(echo)
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def greeting_upstream() -> Iterator[Upstream]:
    """A server that says hello and closes at once."""
    upstream = Upstream(greet_and_close)
    yield upstream
    upstream.close()


@pytest.fixture
def echo_proxy(api: ToxiproxyClient, echo_upstream: Upstream) -> Proxy:
    """A proxy named ``echo`` in front of the echo server, on a free port."""
    return api.create_proxy("echo", "127.0.0.1:0", echo_upstream.address)
