"""One proxy: a listener, its upstream, its toxics and its open connections.

Follows toxiproxy: the upstream is dialled per accepted client (a refused upstream closes the
client); disabling closes the listener and every open connection; changing ``listen`` or
``upstream`` restarts the proxy, but a ``listen`` that does not resolve is refused first and
changes nothing; toxics apply to open connections as they are added, updated or removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from shakedown.toxiproxy.link import Connection, Side
from shakedown.toxiproxy.metrics import ByteCounters
from shakedown.toxiproxy.model import (
    DOWNSTREAM,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    UPSTREAM,
    ApiError,
    ProxyInput,
    Toxic,
)

log = logging.getLogger(__name__)


class Proxy:
    """A named TCP proxy from ``listen`` to ``upstream``."""

    def __init__(
        self, name: str, listen: str, upstream: str, counters: ByteCounters | None = None
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.counters = counters or ByteCounters()
        self.enabled = False
        self.toxics: list[Toxic] = []
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._dialling: set[asyncio.Task[None]] = set()

    def to_json(self) -> dict[str, object]:
        """The proxy as toxiproxy shows it, toxics upstream first as in its chains."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.ordered_toxics()],
        }

    def ordered_toxics(self) -> list[Toxic]:
        """Upstream toxics then downstream ones, each in the order they were added."""
        ups = [t for t in self.toxics if t.direction == UPSTREAM]
        return ups + [t for t in self.toxics if t.direction != UPSTREAM]

    async def start(self) -> None:
        """Bind the listener; ``listen`` becomes the bound address (port 0 picks one)."""
        if self.enabled:
            return
        host, port = "", 0
        if self.listen:
            try:
                host, port = split_address(self.listen)
            except ApiError as e:  # Go's net.Listen names no address when it cannot parse it
                raise ApiError(f"listen tcp: {e.message}", 500) from e
        try:
            server = await asyncio.get_running_loop().create_server(
                lambda: Side(on_made=self._accepted), host or None, port, reuse_address=True
            )
        except OSError as e:
            reason = (os.strerror(e.errno) if e.errno else str(e)).lower()
            raise ApiError(f"listen tcp {self.listen}: bind: {reason}", 500) from e
        self._server = server
        sock = server.sockets[0]
        self.listen = join_address(sock.getsockname()[0], sock.getsockname()[1], host)
        self.enabled = True
        log.info("proxy %s listening on %s, upstream %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and drop every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()

    def differs(self, other: ProxyInput) -> bool:
        """Whether ``other`` names another listen address or upstream (so: restart).

        Raises toxiproxy's 500 when ``other.listen`` does not resolve, before anything changes.
        """
        return not same_listen(self.listen, other.listen) or self.upstream != other.upstream

    async def update(self, change: ProxyInput) -> None:
        """Apply a POST /proxies/{name}: restart on a new address, enable or disable."""
        if self.differs(change):
            self.stop()
            self.listen, self.upstream = change.listen, change.upstream
        if change.enabled and not self.enabled:
            await self.start()
        elif not change.enabled:
            self.stop()

    def find_toxic(self, name: str) -> Toxic:
        """The named toxic, or toxiproxy's 404."""
        for toxic in self.toxics:
            if toxic.name == name:
                return toxic
        raise TOXIC_NOT_FOUND

    def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic to the proxy and to every open connection's matching direction."""
        if any(t.name == toxic.name for t in self.toxics):
            raise TOXIC_EXISTS
        self.toxics.append(toxic)
        for conn in list(self.connections):
            conn.links[toxic.direction].add(toxic)

    def replace_toxic(self, toxic: Toxic) -> None:
        """Swap in an updated toxic (same name and direction) everywhere."""
        self.toxics = [toxic if t.name == toxic.name else t for t in self.toxics]
        for conn in list(self.connections):
            conn.links[toxic.direction].update(toxic)

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; open connections stop feeling it at once."""
        toxic = self.find_toxic(name)
        self.toxics = [t for t in self.toxics if t.name != name]
        for conn in list(self.connections):
            conn.links[toxic.direction].remove(name)

    def reset_toxics(self) -> None:
        """Remove every toxic (POST /reset)."""
        for toxic in list(self.toxics):
            self.remove_toxic(toxic.name)

    def forget(self, conn: Connection) -> None:
        """A connection ended (called by the connection)."""
        self.connections.discard(conn)

    def _accepted(self, client: Side) -> None:
        task = asyncio.ensure_future(self._dial(client))
        self._dialling.add(task)  # held, so the task is not collected while it dials
        task.add_done_callback(self._dialling.discard)

    async def _dial(self, client: Side) -> None:
        server = self._server
        try:
            host, port = split_address(self.upstream)
            _, up = await asyncio.get_running_loop().create_connection(Side, host, port)
        except (OSError, ApiError) as e:
            log.warning("proxy %s: cannot reach upstream %s: %s", self.name, self.upstream, e)
            client.transport.close()
            return
        if server is None or server is not self._server:  # disabled while dialling
            client.transport.abort()
            up.transport.abort()
            return
        tallies = {d: self.counters.tally(d, self.name, self.listen, self.upstream)
                   for d in (UPSTREAM, DOWNSTREAM)}
        conn = Connection(self, client, up, list(self.toxics), tallies)
        self.connections.add(conn)
        conn.start()


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) to host and port number, as Go's net package reads it.

    The port may be a service name (``http``); an empty port is 0. Raises toxiproxy's 500
    with Go's message when the address does not parse.
    """
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ApiError(f"address {address}: missing port in address", 500)
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ApiError(f"address {address}: too many colons in address", 500)
    return host.removeprefix("[").removesuffix("]"), _port(port)


def resolve_listen(address: str) -> tuple[str, int]:
    """The address as Go's ``net.ResolveTCPAddr`` sees it: (IP or "", port), or its 500."""
    host, port = split_address(address)
    if not host:
        return "", port
    try:
        return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]), port
    except OSError as e:
        raise ApiError(f"lookup {host}: no such host", 500) from e


def join_address(host: str, port: int, asked: str) -> str:
    """The address shown for a bound listener, bracketing IPv6 like Go does."""
    if not asked:
        host = "[::]"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def same_listen(current: str, wanted: str) -> bool:
    """Whether two listen addresses resolve alike, as toxiproxy's Differs compares them.

    ``wanted`` must resolve (toxiproxy's 500 otherwise); a ``current`` that does not (a
    disabled proxy created with a bad address) counts as different.
    """
    target = resolve_listen(wanted)
    try:
        return resolve_listen(current) == target
    except ApiError:
        return False


def _port(port: str) -> int:
    if not port:
        return 0
    if port.isdigit():
        if int(port) > 65535:
            raise ApiError(f"address {port}: invalid port", 500)
        return int(port)
    try:
        return socket.getservbyname(port, "tcp")
    except OSError as e:
        raise ApiError(f"lookup tcp/{port}: unknown port", 500) from e
