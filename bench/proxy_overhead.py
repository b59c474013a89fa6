"""Overhead of shakedown's toxiproxy server: added latency and throughput vs direct loopback.

Three processes on 127.0.0.1: this client, an upstream (echo + sink) and the proxy server
(``python -m shakedown.toxiproxy``). Direct and proxied runs alternate in the same run, so
the ratio holds even when the machine's absolute speed drifts. With ``--toxiproxy BINARY``
a build of Shopify's toxiproxy-server runs beside ours and takes its turn in every round.
Bounded: a fixed number of round trips and bytes, and a deadline per phase.

    .venv/bin/python bench/proxy_overhead.py [--round-trips 4000] [--megabytes 256]
        [--toxiproxy PATH/TO/toxiproxy-server]

Targets: <= 150 µs added p50 round trip, >= 500 MB/s through the proxy; beside Shopify's:
at or below its added latency, at or above its throughput.
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
from shakedown.waiting import GiveUp, wait_for

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


def _start_shopify(binary: Path) -> tuple[subprocess.Popen[str], str]:
    """Shopify's toxiproxy-server on a free port, once its API answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"

    def version() -> str:
        if proc.poll() is not None:
            raise GiveUp(f"{binary} exited with {proc.returncode}")
        return ToxiproxyClient(url, timeout=1).version()

    wait_for(version, bool, timeout=30, what=f"{binary} API on {url}")
    return proc, url


def measure(opts: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Direct, builtin and (with --toxiproxy) Shopify's server, interleaved in one run.

    Returns per path ("direct", "builtin", "shopify") its p50/p99 round trip (µs) and
    median throughput (MB/s).
    """
    upstream, ports = _start([__file__, "--serve-upstream"])
    procs = [upstream]
    try:
        echo_port, sink_port = (int(p) for p in ports.split())
        servers: dict[str, str] = {}
        builtin, banner = _start(["-m", "shakedown.toxiproxy", "--port", "0"])
        procs.append(builtin)
        servers["builtin"] = banner.rsplit(" ", 1)[1]
        if opts.toxiproxy:
            shopify, servers["shopify"] = _start_shopify(opts.toxiproxy)
            procs.append(shopify)
        paths = {"direct": (echo_port, sink_port)}
        for label, url in servers.items():
            api = ToxiproxyClient(url)
            paths[label] = (
                api.create_proxy("bench-echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}").port,
                api.create_proxy("bench-sink", "127.0.0.1:0", f"127.0.0.1:{sink_port}").port)
        rtts: dict[str, list[float]] = {label: [] for label in paths}
        rates: dict[str, list[float]] = {label: [] for label in paths}
        for echo, _ in paths.values():
            round_trips(echo, 200)  # warm up
        blocks = 10
        for _ in range(blocks):
            for label, (echo, _) in paths.items():
                rtts[label] += round_trips(echo, opts.round_trips // blocks)
        for _ in range(opts.repeats):
            for label, (_, sink) in paths.items():
                rates[label].append(throughput(sink, opts.megabytes))
    finally:
        for proc in reversed(procs):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.terminate()
            proc.wait(10)
    return {label: {"p50": statistics.median(rtts[label]), "p99": _pct(rtts[label], 0.99),
                    "mb": statistics.median(rates[label]), "samples": float(len(rtts[label]))}
            for label in paths}


def report(fig: dict[str, dict[str, float]], opts: argparse.Namespace) -> str:
    """The table printed at the end: each proxy against direct loopback, and the builtin
    against Shopify's when it ran."""
    direct = fig["direct"]
    rows = [
        f"machine: {describe()}",
        f"round trips: {int(direct['samples'])} x {MESSAGE} B each way per path; "
        f"throughput: {opts.repeats} x {opts.megabytes} MiB per path",
        "",
        f"{'path':<10}{'p50 µs':>9}{'added':>9}{'p99 µs':>9}{'added':>9}{'MB/s':>8}"
        f"{'/direct':>9}",
    ]
    for label, f in fig.items():
        rows.append(f"{label:<10}{f['p50']:>9.1f}{f['p50'] - direct['p50']:>9.1f}"
                    f"{f['p99']:>9.1f}{f['p99'] - direct['p99']:>9.1f}{f['mb']:>8.0f}"
                    f"{f['mb'] / direct['mb']:>9.2f}")
    b = fig["builtin"]
    added50 = b["p50"] - direct["p50"]
    rows += ["", f"builtin: {added50:.1f} µs added p50 (aim <= 150: "
             f"{'ok' if added50 <= 150 else 'MISSED'}), {b['mb']:.0f} MB/s (aim >= 500: "
             f"{'ok' if b['mb'] >= 500 else 'MISSED'})"]
    if "shopify" in fig:
        s = fig["shopify"]
        s_added = s["p50"] - direct["p50"]
        rows.append(f"builtin vs Shopify's: added p50 {added50:.1f} vs {s_added:.1f} µs "
                    f"({'ok' if added50 <= s_added else 'MISSED'}: at or below), throughput "
                    f"{b['mb'] / s['mb']:.2f}x ({'ok' if b['mb'] >= s['mb'] else 'MISSED'}: "
                    f"at or above)")
    return "\n".join(rows)


def main() -> int:
    """Parse options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=4000, help="small echoes per side")
    parser.add_argument("--megabytes", type=int, default=256, help="MiB per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per side")
    parser.add_argument("--toxiproxy", type=Path, metavar="BINARY",
                        help="a build of Shopify's toxiproxy-server to measure beside ours")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve_upstream:
        serve_upstream()
        return 0
    print(report(measure(opts), opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
