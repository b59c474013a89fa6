"""API flood: a few connections hammer one node's public API with valid and malformed calls
while another client measures how the node answers it, and what must hold.

    FloodAgent(target="node-100", start_s=3, duration_s=12, connections=2, rate=200)
    LatencyProbe(target="node-100", start_s=1, duration_s=16)   # one query every 0.1 s
    FloodWithstood(p99_ms=500)    # refused over its rate, malformed refused, the probe served

Every flood connection sends its share of ``rate`` calls per second (with at most
``inflight`` outstanding), in turn a valid query, a query whose bytes do not parse and a
publish whose bytes do not parse, until ``max_calls`` or its time is up (both bounds hold).
``rate=0`` is as fast as the node answers: on the 2-core machine that saturates the node
whatever it refuses (see docs/benchmarks.md), so the scenario states its rate.
Each connection records the codes it got (``flood`` events);
at the end the agent records the node's own call counts from GetStatus.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import grpc

from refnode.proto import refnode_pb2 as pb
from shakedown.client import NodeClient
from shakedown.scenarios.agents import Agent, AgentContext
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.streams import read_status
from shakedown.scenarios.view import RunView

SERVICE = "/refnode.v1.ReplicationApi/"
GARBAGE = b"\xff\xff\xff\xff"   # no protobuf message parses from an unterminated varint tag
KINDS = ("query", "bad-query", "bad-publish")
REFUSED_MALFORMED = {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"}


def _code(error: grpc.RpcError) -> str:
    return error.code().name if isinstance(error, grpc.Call) else type(error).__name__


@dataclass(frozen=True)
class FloodAgent(Agent):
    """``connections`` clients, each on its own connection, ``rate`` calls/s in all."""

    target: str = "node-100"
    connections: int = 2
    rate: float = 200.0         # calls per second across the connections; 0: no pacing
    inflight: int = 16
    max_calls: int = 20_000     # per connection
    label: str = "flood"

    def run(self, ctx: AgentContext) -> None:
        if not ctx.sleep_until(self.start_s):
            return
        node = ctx.node(self.target)
        threads = [threading.Thread(target=self._connection, args=(ctx, node["grpc"], k),
                                    name=f"{self.label}-{k}", daemon=True)
                   for k in range(self.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=self.duration_s + 30)
        with NodeClient(node["grpc"], timeout=5) as client:
            ctx.history.info("flood", label=self.label, phase="status", target=self.target,
                             **read_status(client))

    def _connection(self, ctx: AgentContext, endpoint: str, k: int) -> None:
        codes: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        began = time.monotonic()
        with grpc.insecure_channel(endpoint) as channel:
            raw = {name: channel.unary_unary(SERVICE + name, request_serializer=None,
                                             response_deserializer=None)
                   for name in ("QueryEnvelopes", "PublishPayerEnvelopes")}
            query = pb.QueryEnvelopesRequest(limit=1).SerializeToString()
            sends = {"query": (raw["QueryEnvelopes"], query),
                     "bad-query": (raw["QueryEnvelopes"], GARBAGE),
                     "bad-publish": (raw["PublishPayerEnvelopes"], GARBAGE)}
            pending: deque[tuple[str, Any]] = deque()
            calls, every = 0, self.connections / self.rate if self.rate else 0.0
            while calls < self.max_calls and ctx.until(self.end_s):
                if every and ctx.stop.wait(max(0.0, began + calls * every - time.monotonic())):
                    break
                kind = KINDS[calls % len(KINDS)]
                method, body = sends[kind]
                pending.append((kind, method.future(body, timeout=10)))
                calls += 1
                if len(pending) >= self.inflight:
                    self._settle(pending.popleft(), codes)
            while pending:
                self._settle(pending.popleft(), codes)
        ctx.history.info("flood", label=self.label, phase="done", connection=k, calls=calls,
                         elapsed_s=round(time.monotonic() - began, 3),
                         codes={kind: dict(c) for kind, c in codes.items()})

    @staticmethod
    def _settle(item: tuple[str, Any], codes: dict[str, Counter[str]]) -> None:
        kind, future = item
        try:
            future.result()
            codes[kind]["OK"] += 1
        except grpc.RpcError as e:
            codes[kind][_code(e)] += 1


@dataclass(frozen=True)
class LatencyProbe(Agent):
    """Another client of ``target``: one query every ``interval_s`` on its own connection;
    records each one's latency and code (one ``latency`` event at the end)."""

    target: str = "node-100"
    interval_s: float = 0.1
    label: str = "probe"

    def run(self, ctx: AgentContext) -> None:
        if not ctx.sleep_until(self.start_s):
            return
        samples: list[list[Any]] = []
        with NodeClient(ctx.node(self.target)["grpc"], timeout=10) as client:
            k = 0
            while ctx.until(self.end_s):
                t, began = ctx.elapsed(), time.monotonic()
                try:
                    client.stub.QueryEnvelopes(pb.QueryEnvelopesRequest(limit=1), timeout=10)
                    code = "OK"
                except grpc.RpcError as e:
                    code = _code(e)
                samples.append([round(t, 3), round((time.monotonic() - began) * 1000, 2), code])
                k += 1
                if not ctx.sleep_until(self.start_s + k * self.interval_s):
                    break
        ctx.history.info("latency", label=self.label, target=self.target, samples=samples)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


@dataclass(frozen=True)
class FloodWithstood(Expectation):
    """The flood ``label`` sent at least ``min_calls``; the node refused calls over its rate
    (RESOURCE_EXHAUSTED: the limit was reached, so the check is not vacuous) and every
    malformed call (INVALID_ARGUMENT or, over the rate, RESOURCE_EXHAUSTED; never OK, never
    UNKNOWN); the probe ``probe`` was answered OK every time while the flood ran, with a p99
    latency within ``p99_ms``; the node's own counts (GetStatus) hold at least the refusals
    the flood saw, and are reported."""

    label: str = "flood"
    probe: str = "probe"
    p99_ms: float = 500.0
    min_calls: int = 2_000

    @property
    def name(self) -> str:
        return f"flood-withstood({self.label})"

    def check(self, view: RunView) -> Check:
        events = [e for e in view.events_of("flood") if e.get("label") == self.label]
        done = [e for e in events if e.get("phase") == "done"]
        status = next((e for e in events if e.get("phase") == "status"), None)
        latency = next((e for e in view.events_of("latency") if e.get("label") == self.probe),
                       None)
        if not done or status is None or latency is None:
            return self.failed(f"the flood {self.label} or the probe {self.probe} did not "
                               f"finish (flood connections done: {len(done)})")
        codes: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        for e in done:
            for kind, c in e["codes"].items():
                codes[kind].update(c)
        calls = sum(e["calls"] for e in done)
        begin = min(e["t"] - e["elapsed_s"] for e in done) - view.t0
        end = max(e["t"] for e in done) - view.t0
        during = [s for s in latency["samples"] if begin <= s[0] <= end]
        worst = p99([s[1] for s in during if s[2] == "OK"])
        refused = sum(c["RESOURCE_EXHAUSTED"] for c in codes.values())
        node_calls = status.get("calls", {})
        counted = sum(n for key, n in node_calls.items() if key.endswith(" RESOURCE_EXHAUSTED"))
        details = {"calls": calls, "seconds": round(end - begin, 2),
                   "calls_per_s": round(calls / max(end - begin, 1e-3)),
                   "codes": {k: dict(c) for k, c in codes.items()},
                   "probe_calls": len(during), "probe_p99_ms": worst,
                   "node_counts": node_calls}
        view.metrics["api_flood"] = details
        problems = []
        if calls < self.min_calls:
            problems.append(f"only {calls} flood calls sent (wanted >= {self.min_calls})")
        if not refused:
            problems.append(f"{status['target']} refused none of {calls} flood calls over "
                            f"its rate ({round(calls / max(end - begin, 1e-3))}/s on "
                            f"{len(done)} connections): no rate limit")
        wrong = {kind: {code: n for code, n in codes[kind].items()
                        if code not in REFUSED_MALFORMED} for kind in ("bad-query", "bad-publish")}
        wrong = {k: v for k, v in wrong.items() if v}
        if wrong:
            problems.append(f"malformed calls answered {wrong} (wanted INVALID_ARGUMENT)")
        failed = Counter(s[2] for s in during if s[2] != "OK")
        if not during or failed:
            problems.append(f"the probe got {dict(failed) or 'no answer'} in "
                            f"{len(during)} calls during the flood")
        if worst > self.p99_ms:
            problems.append(f"the probe's p99 latency was {worst:.0f} ms during the flood "
                            f"(limit {self.p99_ms:g} ms)")
        if "error" in status or counted < refused:
            problems.append(f"{status['target']} counted {counted} refusals over its rate, the "
                            f"flood saw {refused} (status: {status.get('error', 'ok')})")
        if problems:
            return self.failed("; ".join(problems), **details)
        return self.passed(f"{calls} flood calls in {end - begin:.1f}s ({details['calls_per_s']}"
                           f"/s), {refused} refused over the rate, every malformed one refused; "
                           f"probe p99 {worst:.0f} ms over {len(during)} calls (limit "
                           f"{self.p99_ms:g} ms)", **details)
