"""Run a scenario's workload: publishers that write every batch into the history.

``Publisher`` is shakedown.traffic.Traffic (rate, duration, count bound, batch, workers) whose
every publish call becomes an ``invoke`` and an ``ok`` (with each ack's originator, sequence
id, envelope digest and payload digest) or a ``fail``/``info`` (with the payload digests, so
the checker can later tell whether an unsure publish landed). Targets are routed per call, so
gateways can come and go under traffic.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable

import grpc

from refnode.envelopes import client_envelope, sign_payer_envelope
from refnode.proto import refnode_pb2 as pb
from shakedown.client import GatewayClient, NodeClient
from shakedown.scenarios.api import Publish, Ramp
from shakedown.scenarios.history import History
from shakedown.scenarios.probe import payload_digest
from shakedown.traffic import Ack, GatewayTarget, NodeTarget, Traffic, payers_for

Target = NodeTarget | GatewayTarget
# Errors that mean "not applied"; any other (UNAVAILABLE, DEADLINE_EXCEEDED...) is unsure.
DEFINITE = {"INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION",
            "UNIMPLEMENTED", "NOT_FOUND", "ALREADY_EXISTS", "OUT_OF_RANGE"}


class Router:
    """Which target the next publish call goes to; tracks calls in flight per target.

    Node targets are fixed; gateway targets are the live gateways, added and removed while
    traffic runs. ``drain(name)`` waits until no call to that target is in flight.
    """

    def __init__(self, nodes: dict[str, NodeTarget]):
        self.nodes = nodes
        self.gateways: dict[str, GatewayTarget] = {}
        self._names: dict[str, str] = {t.endpoint: n for n, t in nodes.items()}
        self._in_flight: dict[str, int] = {}
        self._cond = threading.Condition()

    def add_gateway(self, name: str, endpoint: str) -> None:
        with self._cond:
            self.gateways[name] = GatewayTarget(endpoint)
            self._names[endpoint] = name

    def add_node(self, name: str, target: NodeTarget) -> None:
        """A node that joined during the run: workload items may name it from now on."""
        with self._cond:
            self.nodes[name] = target
            self._names[target.endpoint] = name

    def remove_gateway(self, name: str) -> None:
        with self._cond:
            self.gateways.pop(name, None)

    def name_of(self, target: Target) -> str:
        return self._names.get(target.endpoint, target.endpoint)

    def pick(self, spec: Publish | Ramp, turn: int) -> Target | None:
        """The target of call ``turn``: round-robin over the spec's nodes or the live gateways."""
        with self._cond:
            if spec.via == "node":
                names = list(spec.to) or sorted(self.nodes, key=lambda n: self.nodes[n].node_id)
                return self.nodes[names[turn % len(names)]]
            live = sorted(self.gateways)
            if not live:
                return None
            gateway = self.gateways[live[turn % len(live)]]
            if spec.to:
                ask = self.nodes[spec.to[(turn // len(live)) % len(spec.to)]].node_id
                return GatewayTarget(gateway.endpoint, ask)
            return gateway

    def begin(self, target: Target) -> None:
        with self._cond:
            self._in_flight[target.endpoint] = self._in_flight.get(target.endpoint, 0) + 1

    def end(self, target: Target) -> None:
        with self._cond:
            self._in_flight[target.endpoint] -= 1
            self._cond.notify_all()

    def drain(self, endpoint: str, timeout_s: float) -> bool:
        """True once no call to ``endpoint`` is in flight; False if still busy at the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._in_flight.get(endpoint), timeout_s)


class Publisher(Traffic):
    """Traffic for one workload item, recorded call by call into ``history``."""

    def __init__(self, spec: Publish | Ramp, router: Router, history: History, *, rate: float,
                 duration_s: float, batch: int, label: str, max_envelopes: int = 50_000):
        self.spec, self.router, self.history, self.label = spec, router, history, label
        first = router.pick(spec, 0) or GatewayTarget("127.0.0.1:1")  # Traffic wants one target
        super().__init__([first], rate=rate, duration_s=duration_s, max_envelopes=max_envelopes,
                         batch=batch, payers=payers_for(spec.payers), workers=spec.workers,
                         topic=f"topic/{label}".encode())

    def _send(self, clients: dict, target: Target, n: int, turn: int) -> None:
        routed = self.router.pick(self.spec, turn)
        bodies = [client_envelope(self.topic, os.urandom(self.payload_size)) for _ in range(n)]
        digests = [payload_digest(b) for b in bodies]
        if routed is None:
            op = self.history.invoke("publish", p=threading.current_thread().name,
                                     label=self.label, target="(no gateway)", n=n)
            self.history.complete("publish", op, "fail", error="NO_TARGET", payloads=digests)
            self._record_failure(n, "NO_TARGET")
            return
        self._publish(clients, routed, bodies, digests, turn)

    def _publish(self, clients: dict, target: Target, bodies: list[bytes], digests: list[str],
                 turn: int) -> None:
        name = self.router.name_of(target)
        if isinstance(target, NodeTarget):
            payer_key = self.payers[turn % len(self.payers)]
            request: list = [sign_payer_envelope(payer_key, b, target.node_id) for b in bodies]
        else:
            request = [pb.ClientEnvelope.FromString(b) for b in bodies]
        op = self.history.invoke("publish", p=threading.current_thread().name, label=self.label,
                                 target=name, node=target.node_id or None, n=len(bodies))
        sent_at = time.monotonic()
        self.router.begin(target)
        try:
            if isinstance(target, NodeTarget):
                client = clients.setdefault(target.endpoint,
                                            NodeClient(target.endpoint, self.timeout))
                signed = client.publish(request)
            else:
                gw = clients.setdefault(target.endpoint,
                                        GatewayClient(target.endpoint, self.timeout))
                signed = gw.publish(request, target.node_id)
        except grpc.RpcError as e:
            code = e.code().name if isinstance(e, grpc.Call) else type(e).__name__
            detail = e.details() if isinstance(e, grpc.Call) else str(e)
            self.history.complete("publish", op, "fail" if code in DEFINITE else "info",
                                  error=code, detail=(detail or "")[:200], payloads=digests)
            self._record_failure(len(bodies), code)
            return
        finally:
            self.router.end(target)
        acked_at = time.monotonic()
        rows, acks = [], []
        for env in signed:
            raw = env.SerializeToString()
            unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
            inner = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
            digest = hashlib.sha256(raw).hexdigest()
            rows.append([unsigned.originator_node_id, unsigned.originator_sequence_id, digest,
                         payload_digest(inner.unsigned_client_envelope)])
            acks.append(Ack(unsigned.originator_node_id, unsigned.originator_sequence_id, digest,
                            sent_at, acked_at))
        self.history.complete("publish", op, "ok", acks=rows)
        with self._lock:
            self.stats.acked += len(acks)
            self.stats.acks += acks


def publisher_for(spec: Publish, router: Router, history: History) -> Publisher:
    return Publisher(spec, router, history, rate=spec.rate, duration_s=spec.duration_s,
                     batch=spec.batch, label=spec.label, max_envelopes=spec.max_envelopes)


def run_ramp(spec: Ramp, router: Router, history: History,
             caught_up: Callable[[dict[int, int], float], bool],
             stop: threading.Event, say: Callable[[str], None],
             started: Callable[[Publisher], None] = lambda pub: None) -> None:
    """Step through ``spec.rates``; after each step wait for replication, then judge the step.

    ``caught_up(wanted_clock, timeout_s)`` waits until every node holds the acked maxima;
    ``started(publisher)`` hears of each step's publisher (its acks count for the settle).
    Each step is one ``ramp`` event: rate, acked, failed, achieved rate, caught up, verdict.
    """
    for rate in spec.rates:
        if stop.is_set():
            return
        batch = max(1, round(rate / 10))
        pub = Publisher(spec, router, history, rate=rate, duration_s=spec.step_s, batch=batch,
                        label=f"{spec.label}-{rate:g}",
                        max_envelopes=int(rate * spec.step_s) + batch)
        began = time.monotonic()
        started(pub)
        stats = pub.run()
        elapsed = max(time.monotonic() - began, spec.step_s)
        wanted: dict[int, int] = {}
        for ack in stats.acks:
            wanted[ack.originator_node_id] = max(wanted.get(ack.originator_node_id, 0),
                                                 ack.sequence_id)
        t_wait = time.monotonic()
        synced = caught_up(wanted, spec.catch_up_s)
        achieved = stats.acked / elapsed
        ok = (synced and stats.failed == 0 and stats.acked >= spec.min_ratio * rate * spec.step_s)
        history.info("ramp", rate=rate, planned=int(rate * spec.step_s), sent=stats.sent,
                     acked=stats.acked, failed=stats.failed,
                     achieved=round(achieved, 2), caught_up=synced,
                     catch_up_s=round(time.monotonic() - t_wait, 3), sustained=ok)
        say(f"ramp {rate:g}/s: acked {stats.acked}, failed {stats.failed}, "
            f"achieved {achieved:.1f}/s, replicated {'yes' if synced else 'no'}"
            f" -> {'sustained' if ok else 'not sustained'}")
        if not ok:
            return
