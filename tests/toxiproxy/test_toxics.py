"""Each toxic's effect, observed over real loopback TCP through our server.

Times are loose lower bounds ("at least 150 ms when 200 ms was set"); an upper bound appears
only to tell "the toxic let go" from "the toxic held on" (seconds apart), never as a speed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from shakedown.toxiproxy.client import Proxy, ToxiproxyClient

IO_TIMEOUT = 10.0  # no socket call here may block longer


def connect(proxy: Proxy) -> socket.socket:
    """A client socket to the proxy, with a timeout so no test can hang."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes, or fewer if the peer closed."""
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            break
        buf += part
    return bytes(buf)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for one echo of ``payload``; fails unless the echo matches."""
    start = time.monotonic()
    sock.sendall(payload)
    got = recv_exact(sock, len(payload))
    assert got == payload, f"echo returned {got!r} for {payload!r}"
    return time.monotonic() - start


def read_to_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the peer closes, and how it closed: 'eof' or 'reset'."""
    buf = bytearray()
    try:
        while part := sock.recv(65536):
            buf += part
    except ConnectionResetError:
        return bytes(buf), "reset"
    return bytes(buf), "eof"


def nothing_arrives(sock: socket.socket, within: float = 0.3) -> bool:
    """True if no byte arrives (and the socket stays open) for ``within`` seconds."""
    sock.settimeout(within)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(IO_TIMEOUT)
    return False


@pytest.fixture
def client(echo_proxy: Proxy) -> Iterator[socket.socket]:
    """An open connection through the echo proxy, already carrying data."""
    sock = connect(echo_proxy)
    round_trip(sock)
    yield sock
    sock.close()


def add(api: ToxiproxyClient, kind: str, stream: str = "downstream", **attrs: int) -> str:
    """Add a toxic to the ``echo`` proxy; returns its name."""
    return api.add_toxic("echo", kind, stream=stream, attributes=attrs).name


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_round_trip(api, client, stream):
    add(api, "latency", stream, latency=200)
    assert round_trip(client) >= 0.15
    assert round_trip(client) >= 0.15


def test_latency_with_jitter_stays_within_bounds(api, client):
    add(api, "latency", latency=100, jitter=50)
    assert all(round_trip(client) >= 0.04 for _ in range(3))


def test_latency_delays_from_read_time_not_cumulatively(api, client):
    add(api, "latency", latency=300)
    start = time.monotonic()
    for _ in range(5):
        client.sendall(b"x" * 100)
    assert recv_exact(client, 500) == b"x" * 500
    assert time.monotonic() - start < 5 * 0.3, "five chunks were delayed one after another"


def test_bandwidth_limits_rate(api, client):
    add(api, "bandwidth", rate=100)  # 100 KB/s
    payload = os.urandom(50_000)
    start = time.monotonic()
    client.sendall(payload)
    assert recv_exact(client, len(payload)) == payload
    assert time.monotonic() - start >= 0.35, "50 KB at 100 KB/s takes about 0.5 s"


def test_timeout_zero_holds_data_until_removed_then_closes(api, client):
    name = add(api, "timeout", "upstream", timeout=0)
    client.sendall(b"lost")
    assert nothing_arrives(client)
    api.remove_toxic("echo", name)
    data, _ = read_to_end(client)
    assert data == b"", "data sent under the timeout toxic is dropped, then the link closes"


def test_timeout_closes_after_delay(api, echo_proxy):
    add(api, "timeout", timeout=200)
    start = time.monotonic()
    with connect(echo_proxy) as sock:
        sock.sendall(b"lost")
        assert read_to_end(sock) == (b"", "eof")
    assert time.monotonic() - start >= 0.15


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_reset_peer_gives_connection_reset(api, echo_proxy, stream):
    add(api, "reset_peer", stream, timeout=100)
    start = time.monotonic()
    with connect(echo_proxy) as sock, pytest.raises(ConnectionResetError):
        sock.sendall(b"hello")
        while sock.recv(100):
            pass
    assert time.monotonic() - start >= 0.08


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_reset_peer_added_on_open_connection_closes_it_with_fin(api, echo_proxy, client, stream):
    # toxiproxy sets SO_LINGER 0 only on connections accepted while a reset_peer toxic
    # exists; one already open when the toxic arrives is closed normally.
    add(api, "reset_peer", stream, timeout=0)
    client.sendall(b"hello")
    assert read_to_end(client) == (b"", "eof")
    with connect(echo_proxy) as fresh:
        fresh.sendall(b"hello")
        assert read_to_end(fresh) == (b"", "reset"), "a new connection gets the RST"


def test_slicer_delivers_in_pieces(api, client):
    add(api, "slicer", average_size=10, size_variation=0, delay=20_000)
    client.sendall(b"y" * 100)
    sizes = []
    while sum(sizes) < 100:
        part = client.recv(4096)
        assert part, f"closed after {sum(sizes)} bytes"
        sizes.append(len(part))
    assert max(sizes) <= 10 and len(sizes) >= 5, sizes


def test_limit_data_closes_after_n_bytes(api, client):
    add(api, "limit_data", bytes=20)
    client.sendall(b"z" * 100)
    data, how = read_to_end(client)
    assert (data, how) == (b"z" * 20, "eof")


def test_slow_close_delays_the_close(api, greeting_upstream):
    proxy = api.create_proxy("echo", "127.0.0.1:0", greeting_upstream.address)
    add(api, "slow_close", delay=300)
    start = time.monotonic()
    with connect(proxy) as sock:
        assert read_to_end(sock) == (b"hello", "eof")
    assert time.monotonic() - start >= 0.25


def limited(proxy: Proxy) -> bool:
    """Whether a fresh connection felt the limit_data toxic (cut at 5 of 100 bytes)."""
    with connect(proxy) as sock:
        sock.sendall(b"q" * 100)
        got = recv_exact(sock, 100)
    assert len(got) in (5, 100), len(got)
    return len(got) == 5


@pytest.mark.parametrize(("toxicity", "expected"), [(0.0, {False}), (1.0, {True})])
def test_toxicity_zero_and_one(api, echo_proxy, toxicity, expected):
    api.add_toxic("echo", "limit_data", toxicity=toxicity, attributes={"bytes": 5})
    assert {limited(echo_proxy) for _ in range(5)} == expected


def test_toxicity_is_decided_per_connection(api, echo_proxy):
    api.add_toxic("echo", "limit_data", toxicity=0.5, attributes={"bytes": 5})
    outcomes = {limited(echo_proxy) for _ in range(40)}
    assert outcomes == {True, False}, "40 connections at toxicity 0.5 all fared alike"


def test_live_add_and_remove_on_open_connection(api, client):
    name = add(api, "latency", latency=200)
    assert round_trip(client) >= 0.15
    api.remove_toxic("echo", name)
    round_trip(client)  # still the same connection, still echoing


def test_removing_latency_releases_held_data(api, client):
    name = add(api, "latency", latency=5000)
    start = time.monotonic()
    client.sendall(b"held")
    api.remove_toxic("echo", name)
    assert recv_exact(client, 4) == b"held"
    assert time.monotonic() - start < 4, "data waited out the removed 5 s latency"


def test_live_update_changes_latency(api, client):
    name = add(api, "latency", latency=10)
    api.update_toxic("echo", name, attributes={"latency": 300})
    assert round_trip(client) >= 0.25


def test_reset_endpoint_clears_toxics_on_open_connection(api, client):
    add(api, "timeout", "upstream", timeout=0)
    add(api, "latency", latency=100)
    api.reset()
    data, _ = read_to_end(client)  # removing the timeout toxic closes its connections
    assert data == b""


def test_disable_drops_connections_and_refuses_new(api, echo_proxy, client):
    api.disable("echo")
    data, _ = read_to_end(client)
    assert data == b""
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy)
    api.enable("echo")
    with connect(echo_proxy) as sock:
        round_trip(sock)


def test_delete_drops_connections(api, client):
    api.delete_proxy("echo")
    assert read_to_end(client)[0] == b""


def test_unreachable_upstream_closes_client(api):
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{spare.getsockname()[1]}"
    spare.close()
    proxy = api.create_proxy("echo", "127.0.0.1:0", dead)
    with connect(proxy) as sock:
        assert read_to_end(sock)[0] == b""


def test_large_transfer_is_intact_with_and_without_toxics(api, client):
    payload = os.urandom(4 << 20)
    sender = run(lambda: client.sendall(payload))
    assert recv_exact(client, len(payload)) == payload
    sender.join(IO_TIMEOUT)
    add(api, "latency", latency=1)
    add(api, "slicer", "upstream", average_size=65536, size_variation=1000)
    sender = run(lambda: client.sendall(payload))
    assert recv_exact(client, len(payload)) == payload
    sender.join(IO_TIMEOUT)


def test_many_connections_in_parallel(echo_proxy):
    errors: list[BaseException] = []

    def talk() -> None:
        try:
            with connect(echo_proxy) as sock:
                for i in range(20):
                    round_trip(sock, b"%d" % i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [run(talk) for _ in range(20)]
    for thread in threads:
        thread.join(IO_TIMEOUT)
    assert not errors, errors[:3]


def run(target: Callable[[], object]) -> threading.Thread:
    """Start ``target`` on a daemon thread (a writer while the test reads)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
