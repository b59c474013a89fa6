"""``/metrics``: toxiproxy's Prometheus byte counters, and process metrics, over real sockets.

Served only when the server is asked for them (``-proxy-metrics``, ``-runtime-metrics``), as
Shopify's toxiproxy does; names and labels are toxiproxy's.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shakedown.toxiproxy.client import ToxiproxyClient
from shakedown.toxiproxy.server import ServerThread
from shakedown.waiting import wait_for

IO_TIMEOUT = 10.0


def get(url: str, path: str) -> tuple[int, str, str]:
    """(status, content type, body text) of one GET."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=IO_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample on /metrics by sample name: [(labels, value)]."""
    status, _, text = get(url, "/metrics")
    assert status == 200, text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append((dict(s.labels), s.value))
    return found


@pytest.fixture(scope="module")
def metered() -> Iterator[ServerThread]:
    """Our server started as with ``-proxy-metrics``."""
    with ServerThread("127.0.0.1", 0, proxy_metrics=True) as srv:
        yield srv


def test_no_metrics_route_unless_asked(server):
    assert get(server.url, "/metrics")[::2] == (404, "404 page not found\n")


def test_byte_counters_per_proxy_and_direction(metered, echo_upstream):
    api = ToxiproxyClient(metered.url)
    proxy = api.create_proxy("echo", "127.0.0.1:0", echo_upstream.address)
    try:
        payload = b"m" * 3000
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(payload)
            got = bytearray()
            while len(got) < len(payload):
                part = sock.recv(65536)
                assert part, f"closed after {len(got)} bytes"
                got += part
        labels = {"proxy": "echo", "listener": proxy.listen, "upstream": echo_upstream.address}
        want = {
            (name, direction): 3000.0
            for name in ("toxiproxy_proxy_received_bytes_total",
                         "toxiproxy_proxy_sent_bytes_total")
            for direction in ("upstream", "downstream")
        }

        def counters() -> dict[tuple[str, str], float]:
            seen = samples(metered.url)
            return {
                (name, lab["direction"]): value
                for name, _ in want
                for lab, value in seen.get(name, [])
                if {k: lab.get(k) for k in labels} == labels
            }

        wait_for(counters, lambda c: c == want, timeout=IO_TIMEOUT, what="echo byte counters")
    finally:
        api.delete_proxy("echo", missing_ok=True)


def test_proxy_metrics_alone_carry_no_process_metrics(metered):
    status, content_type, _ = get(metered.url, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    assert not [n for n in samples(metered.url) if n.startswith(("process_", "python_"))]


def test_runtime_metrics_are_this_process_metrics():
    with ServerThread("127.0.0.1", 0, runtime_metrics=True) as srv:
        seen = samples(srv.url)
    assert "process_cpu_seconds_total" in seen and "python_info" in seen, sorted(seen)
    assert not [n for n in seen if n.startswith("toxiproxy_")], "proxy metrics were not asked"
