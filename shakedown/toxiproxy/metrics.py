"""``/metrics``: toxiproxy's Prometheus byte counters, and this process's own metrics.

Names and labels are Shopify toxiproxy's: ``toxiproxy_proxy_received_bytes_total`` (read from
a link's source) and ``toxiproxy_proxy_sent_bytes_total`` (written to its destination), with
``direction`` (upstream, downstream), ``proxy``, ``listener`` and ``upstream`` as they were when
the connection was accepted. ``-runtime-metrics`` serves prometheus_client's process, platform
and GC collectors (toxiproxy serves Go's runtime metrics there).

One difference on purpose: toxiproxy adds a link's bytes when the link ends, we count them as
they move, so an open connection shows up before it closes. Totals after close agree.

    counters = ByteCounters()
    tally = counters.tally("upstream", "pg", "127.0.0.1:5433", "127.0.0.1:5432")
    tally[RECEIVED] += 512
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from shakedown.toxiproxy.httpd import Response

RECEIVED, SENT = 0, 1  # indexes into a tally
LABELS = ("direction", "proxy", "listener", "upstream")


class ByteCounters(Collector):
    """Bytes received and sent per label set; links add to their tally, scrapes read them.

    Tallies are plain lists touched only on the server's event loop, so the data path pays
    one integer add per chunk and no lock.
    """

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str, str, str], list[int]] = {}

    def tally(self, direction: str, proxy: str, listener: str, upstream: str) -> list[int]:
        """The ``[received, sent]`` counts for one label set (created at zero)."""
        return self.tallies.setdefault((direction, proxy, listener, upstream), [0, 0])

    def collect(self) -> Iterator[Metric]:
        """Both counter families, one sample per label set (none before any traffic)."""
        if not self.tallies:
            return
        received = CounterMetricFamily(
            "toxiproxy_proxy_received_bytes_total",
            "Bytes a proxy read from a link's source.", labels=LABELS)
        sent = CounterMetricFamily(
            "toxiproxy_proxy_sent_bytes_total",
            "Bytes a proxy wrote to a link's destination.", labels=LABELS)
        for labels, counts in self.tallies.items():
            received.add_metric(labels, counts[RECEIVED])
            sent.add_metric(labels, counts[SENT])
        yield received
        yield sent


def metrics_registry(
    counters: ByteCounters, *, proxy: bool, runtime: bool
) -> CollectorRegistry | None:
    """A registry of what was asked for (``-proxy-metrics``, ``-runtime-metrics``), or None."""
    if not (proxy or runtime):
        return None
    registry = CollectorRegistry()
    if proxy:
        registry.register(counters)
    if runtime:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str) -> Response:
    """The scrape reply, in the format the ``Accept`` header asks for (text 0.0.4 by default)."""
    encode, content_type = choose_encoder(accept)
    return Response(200, encode(registry), content_type)
