"""Ways to see a fault's effect on a deployed testnet, from outside and from inside."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import psycopg

from refnode.envelopes import Signer
from shakedown.client import NodeClient, payer_envelopes
from shakedown.keys import payer
from shakedown.observe import read_vector_clock


def clock(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return read_vector_clock(conn)


def publish(node: dict[str, Any], count: int = 5) -> list[Any]:
    """Publish ``count`` envelopes straight to ``node`` (host port, no proxy on the way)."""
    with NodeClient(node["grpc"], timeout=30) as client:
        return client.publish(payer_envelopes(Signer(bytes(payer(0).key)), node["node_id"],
                                              count))


def in_container(container: str, script: str, timeout: float = 60) -> Any:
    """Run Python inside a project container (its venv has psycopg, grpc); its JSON output."""
    proc = subprocess.run(["docker", "exec", container, "python", "-c", script],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{container}: {proc.stderr.strip()[-500:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_throughput(container: str, dsn: str, size: int) -> float:
    """Bytes/s of one ``size``-byte query result, read from inside ``container``."""
    script = f"""
import json, time, psycopg
with psycopg.connect({dsn!r}) as c:
    c.execute("SELECT 1")
    t = time.monotonic(); c.execute("SELECT repeat('x', {size})").fetchone()
    print(json.dumps({size} / (time.monotonic() - t)))
"""
    return float(in_container(container, script))


def connect_outcome(container: str, host: str, port: int) -> str:
    """From inside ``container``: send a request to host:port; "reset", "closed" or "data"."""
    script = f"""
import json, socket
try:
    s = socket.create_connection(({host!r}, {port}), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n")
    data = s.recv(100)
    print(json.dumps("data" if data else "closed"))
except ConnectionResetError:
    print(json.dumps("reset"))
"""
    return str(in_container(container, script))


def never(probe: Any, within: float, interval: float = 0.2) -> Any:
    """Probe for ``within`` seconds; return the first truthy value seen, else None."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = probe()
        if seen:
            return seen
        time.sleep(interval)
    return None


def send_seconds(container: str, endpoints: list[tuple[str, int]], size: int) -> list[float]:
    """From inside ``container``: seconds to deliver one ``size``-byte gRPC request to each
    ``(host, port)`` (a node, or its proxy listener). The node reads the whole message before
    it refuses it as garbage, so the time covers every byte."""
    script = f"""
import json, time, grpc
out = []
for host, port in {endpoints!r}:
    ch = grpc.insecure_channel(f"{{host}}:{{port}}")
    grpc.channel_ready_future(ch).result(timeout=20)
    call = ch.unary_unary("/refnode.v1.ReplicationApi/QueryEnvelopes")
    t = time.monotonic()
    try:
        call(b"\\xff" * {size}, timeout=120)
    except grpc.RpcError:
        pass
    out.append(time.monotonic() - t)
    ch.close()
print(json.dumps(out))
"""
    return [float(s) for s in in_container(container, script, timeout=300)]


def failed_connects(container: str, host: str, port: int, tries: int = 30,
                    timeout: float = 0.5) -> int:
    """From inside ``container``: how many of ``tries`` TCP connects to host:port did not
    complete within ``timeout`` (a lost SYN or SYN-ACK waits a whole second to be resent)."""
    script = f"""
import json, socket
failed = 0
for _ in range({tries}):
    try:
        socket.create_connection(({host!r}, {port}), timeout={timeout}).close()
    except OSError:
        failed += 1
print(json.dumps(failed))
"""
    return int(in_container(container, script, timeout=120))
