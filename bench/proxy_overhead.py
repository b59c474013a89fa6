"""Overhead of shakedown's toxiproxy server: added latency and throughput vs direct loopback.

Three processes on 127.0.0.1: this client, an upstream (echo + sink) and the proxy server
(``python -m shakedown.toxiproxy``). Direct and proxied runs alternate in the same run, so
the ratio holds even when the machine's absolute speed drifts. Bounded: a fixed number of
round trips and bytes, and a deadline per phase.

    .venv/bin/python bench/proxy_overhead.py [--round-trips 4000] [--megabytes 256]

Targets: <= 150 µs added p50 round trip, >= 500 MB/s through the proxy.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shakedown.machine import describe
from shakedown.toxiproxy.client import ToxiproxyClient

MESSAGE = 64  # bytes per round trip
BLOCK = 1 << 20  # bytes per send in the throughput phase
DEADLINE = 60.0  # seconds per phase at most


def serve_upstream() -> None:
    """Child mode: an echo port and a sink port; prints ``echo_port sink_port``."""
    echo, sink = _listener(), _listener()
    threading.Thread(target=_accept_loop, args=(echo, _echo), daemon=True).start()
    threading.Thread(target=_accept_loop, args=(sink, _sink), daemon=True).start()
    print(echo.getsockname()[1], sink.getsockname()[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _accept_loop(sock: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    """Read an 8-byte length then that many bytes, answer one byte; repeat."""
    with conn:
        while head := _recv_exact(conn, 8):
            left = struct.unpack("!Q", head)[0]
            while left > 0:
                got = conn.recv_into(memoryview(bytearray(min(left, 1 << 20))))
                if not got:
                    return
                left -= got
            conn.sendall(b"k")


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = conn.recv(n - len(buf))
        if not part:
            return b""
        buf += part
    return buf


def round_trips(port: int, count: int) -> list[float]:
    """Round-trip times in µs for ``count`` small echoes on one connection."""
    payload = b"x" * MESSAGE
    times: list[float] = []
    deadline = time.monotonic() + DEADLINE
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(payload)
            if len(_recv_exact(sock, MESSAGE)) != MESSAGE:
                raise RuntimeError(f"echo on port {port} closed early")
            times.append((time.perf_counter() - start) * 1e6)
            if time.monotonic() > deadline:
                break
    return times


def throughput(port: int, megabytes: int) -> float:
    """MB/s (10^6 bytes) sending ``megabytes`` MiB to the sink until it acknowledges."""
    total = megabytes << 20
    block = b"\0" * BLOCK
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.perf_counter()
        sock.sendall(struct.pack("!Q", total))
        for _ in range(total // BLOCK):
            sock.sendall(block)
        if _recv_exact(sock, 1) != b"k":
            raise RuntimeError(f"sink on port {port} closed early")
        return total / (time.perf_counter() - start) / 1e6


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"{args} exited before announcing its address")
    return proc, line


def measure(opts: argparse.Namespace) -> dict[str, float]:
    """Run both phases, direct and proxied interleaved, and return the figures."""
    upstream, ports = _start([__file__, "--serve-upstream"])
    server, banner = _start(["-m", "shakedown.toxiproxy", "--port", "0"])
    try:
        echo_port, sink_port = (int(p) for p in ports.split())
        api = ToxiproxyClient(banner.rsplit(" ", 1)[1])
        p_echo = api.create_proxy("bench-echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}").port
        p_sink = api.create_proxy("bench-sink", "127.0.0.1:0", f"127.0.0.1:{sink_port}").port
        direct: list[float] = []
        proxied: list[float] = []
        round_trips(echo_port, 200), round_trips(p_echo, 200)  # warm up
        blocks = 10
        for _ in range(blocks):
            direct += round_trips(echo_port, opts.round_trips // blocks)
            proxied += round_trips(p_echo, opts.round_trips // blocks)
        mb_direct: list[float] = []
        mb_proxied: list[float] = []
        for _ in range(opts.repeats):
            mb_direct.append(throughput(sink_port, opts.megabytes))
            mb_proxied.append(throughput(p_sink, opts.megabytes))
    finally:
        for proc in (server, upstream):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.terminate()
            proc.wait(10)
    return {
        "direct_p50": statistics.median(direct),
        "direct_p99": _pct(direct, 0.99),
        "proxy_p50": statistics.median(proxied),
        "proxy_p99": _pct(proxied, 0.99),
        "mb_direct": statistics.median(mb_direct),
        "mb_proxied": statistics.median(mb_proxied),
        "samples": float(len(proxied)),
    }


def report(fig: dict[str, float], opts: argparse.Namespace) -> str:
    """The table printed at the end."""
    added50 = fig["proxy_p50"] - fig["direct_p50"]
    added99 = fig["proxy_p99"] - fig["direct_p99"]
    ok50 = "ok" if added50 <= 150 else "MISSED"
    ok_mb = "ok" if fig["mb_proxied"] >= 500 else "MISSED"
    rows = [
        f"machine: {describe()}",
        f"round trips: {int(fig['samples'])} x {MESSAGE} B each way; "
        f"throughput: {opts.repeats} x {opts.megabytes} MiB",
        "",
        f"{'figure':<28}{'direct':>12}{'proxy':>12}{'added':>12}{'ratio':>8}  target",
        f"{'round trip p50 (µs)':<28}{fig['direct_p50']:>12.1f}{fig['proxy_p50']:>12.1f}"
        f"{added50:>12.1f}{fig['proxy_p50'] / fig['direct_p50']:>8.2f}  <= 150 added: {ok50}",
        f"{'round trip p99 (µs)':<28}{fig['direct_p99']:>12.1f}{fig['proxy_p99']:>12.1f}"
        f"{added99:>12.1f}{fig['proxy_p99'] / fig['direct_p99']:>8.2f}",
        f"{'throughput (MB/s)':<28}{fig['mb_direct']:>12.0f}{fig['mb_proxied']:>12.0f}"
        f"{'':>12}{fig['mb_proxied'] / fig['mb_direct']:>8.2f}  >= 500: {ok_mb}",
    ]
    return "\n".join(rows)


def main() -> int:
    """Parse options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=4000, help="small echoes per side")
    parser.add_argument("--megabytes", type=int, default=256, help="MiB per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per side")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve_upstream:
        serve_upstream()
        return 0
    print(report(measure(opts), opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
