"""Measure a link from inside a host over SSH: ping RTT, loss and duplicates; TCP throughput.

Every probe is bounded (a count and a deadline), so a broken link fails a test, never hangs it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass

from shakedown.faults.ssh import Session

_RTT = re.compile(r"= [\d.]+/([\d.]+)/[\d.]+/([\d.]+) ms")
_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?")


@dataclass(frozen=True)
class Ping:
    sent: int
    received: int
    duplicates: int
    avg_ms: float
    mdev_ms: float

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent


def ping(session: Session, address: str, count: int = 20, interval: float = 0.2) -> Ping:
    """``ping -c count -i interval`` from the host: exactly ``count`` probes, each answered
    within 2 s or lost; the SSH exec's own timeout bounds the whole."""
    out = session.run(f"ping -n -q -c {count} -i {interval} -W 2 {address}",
                      timeout=count * interval * 3 + 30).out
    counts = _COUNTS.search(out)
    assert counts, f"{session.target.name}: no ping summary in {out!r}"
    rtt = _RTT.search(out)
    avg, mdev = (float(rtt.group(1)), float(rtt.group(2))) if rtt else (float("nan"),) * 2
    return Ping(int(counts.group(1)), int(counts.group(2)), int(counts.group(3) or 0), avg, mdev)


def throughput_kbit(session: Session, listen_on: str, nbytes: int = 1_000_000,
                    timeout: float = 60.0) -> float:
    """Kbit/s of one TCP transfer of ``nbytes`` from the host to a listener here."""
    server = socket.create_server((listen_on, 0))
    server.settimeout(timeout)
    port = server.getsockname()[1]
    result: dict[str, float] = {}

    def receive() -> None:
        conn, _ = server.accept()
        conn.settimeout(timeout)
        with conn:
            got, first = 0, 0.0
            while chunk := conn.recv(65536):
                first = first or time.monotonic()
                got += len(chunk)
            result["bytes"], result["s"] = got, time.monotonic() - first

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        session.check(
            f"python3 -c \"import socket; s = socket.create_connection(('{listen_on}', {port}), "
            f"timeout={timeout:g}); s.sendall(bytes({nbytes})); s.close()\"",
            timeout=timeout + 30)
        thread.join(timeout)
    finally:
        server.close()
    assert result.get("bytes") == nbytes, f"received {result.get('bytes')} of {nbytes} bytes"
    return result["bytes"] * 8 / 1000 / result["s"]
