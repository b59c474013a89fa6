"""Traffic: publish envelopes at a rate for a duration, directly to nodes or through gateways.

Bounded in count and time, stoppable, and it keeps every acknowledgement (originator,
sequence id, the payload's digest, when) so a history checker can later demand each
acknowledged envelope be present exactly once on every node.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field

import grpc

from refnode.envelopes import Signer
from refnode.proto import refnode_pb2 as pb
from shakedown.client import GatewayClient, NodeClient, client_envelopes, payer_envelopes
from shakedown.keys import payer


@dataclass(frozen=True)
class Ack:
    originator_node_id: int
    sequence_id: int
    digest: str          # sha256 of the stored originator envelope
    sent_at: float       # time.monotonic() when the batch was sent
    acked_at: float


@dataclass(frozen=True)
class NodeTarget:
    """Publish straight to a node, signing as one of the generator's payers."""

    endpoint: str
    node_id: int


@dataclass(frozen=True)
class GatewayTarget:
    """Publish through a gateway, which signs as its own payer and picks the node (or not)."""

    endpoint: str
    node_id: int = 0


@dataclass
class TrafficStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)


class Traffic:
    """``Traffic([NodeTarget(...)], rate=100, duration_s=10).run()`` -> TrafficStats.

    Args:
        targets: where batches go, round-robin.
        rate: envelopes per second across all workers (0: as fast as it can).
        duration_s: stop after this long.
        max_envelopes: stop after this many sent (the count bound).
        batch: envelopes per publish call.
        payers: keys that sign for NodeTargets, round-robin.
        workers: concurrent publishing threads.
    """

    def __init__(self, targets: list[NodeTarget | GatewayTarget], *, rate: float = 100,
                 duration_s: float = 10, max_envelopes: int = 100_000, batch: int = 10,
                 payers: list[Signer] | None = None, workers: int = 1, payload_size: int = 64,
                 topic: bytes = b"topic/traffic", timeout: float = 5.0):
        if not targets:
            raise ValueError("traffic needs at least one target")
        if any(isinstance(t, NodeTarget) for t in targets) and not payers:
            raise ValueError("publishing straight to nodes needs at least one payer key")
        self.targets, self.rate, self.duration_s = targets, rate, duration_s
        self.max_envelopes, self.batch, self.workers = max_envelopes, batch, workers
        self.payers, self.payload_size, self.topic, self.timeout = (payers or [], payload_size,
                                                                    topic, timeout)
        self.stats = TrafficStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._turn = itertools.count()
        self._threads: list[threading.Thread] = []

    def start(self) -> Traffic:
        self._deadline = time.monotonic() + self.duration_s
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"traffic-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> TrafficStats:
        self._stop.set()
        return self.wait()

    def wait(self) -> TrafficStats:
        for thread in self._threads:
            thread.join()
        return self.stats

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the workers; True once every one has finished."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def counts(self) -> tuple[int, int, int]:
        """(sent, acked, failed) so far, read together."""
        with self._lock:
            return self.stats.sent, self.stats.acked, self.stats.failed

    def run(self) -> TrafficStats:
        return self.start().wait()

    def _claim(self) -> int:
        """How many envelopes this worker may send next (0: done)."""
        with self._lock:
            left = self.max_envelopes - self.stats.sent
            n = max(0, min(self.batch, left))
            self.stats.sent += n
            return n

    def _work(self) -> None:
        clients: dict[str, NodeClient | GatewayClient] = {}
        interval = self.batch * self.workers / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                n = self._claim()
                if n == 0:
                    return
                turn = next(self._turn)
                target = self.targets[turn % len(self.targets)]
                self._send(clients, target, n, turn)
                if interval:
                    next_at += interval
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for client in clients.values():
                client.close()

    def _send(self, clients: dict, target: NodeTarget | GatewayTarget, n: int, turn: int) -> None:
        sent_at = time.monotonic()
        try:
            if isinstance(target, NodeTarget):
                client = clients.setdefault(target.endpoint, NodeClient(target.endpoint,
                                                                        self.timeout))
                payer = self.payers[turn % len(self.payers)]
                signed = client.publish(payer_envelopes(payer, target.node_id, n, topic=self.topic,
                                                        payload_size=self.payload_size))
            else:
                client = clients.setdefault(target.endpoint, GatewayClient(target.endpoint,
                                                                           self.timeout))
                signed = client.publish(client_envelopes(n, topic=self.topic,
                                                         payload_size=self.payload_size),
                                        target.node_id)
        except grpc.RpcError as e:
            self._record_failure(n, e.code().name if isinstance(e, grpc.Call) else str(e))
            return
        acked_at = time.monotonic()
        acks = [_ack(env, sent_at, acked_at) for env in signed]
        with self._lock:
            self.stats.acked += len(acks)
            self.stats.acks += acks

    def _record_failure(self, n: int, reason: str) -> None:
        with self._lock:
            self.stats.failed += n
            self.stats.errors[reason] = self.stats.errors.get(reason, 0) + n


def payers_for(count: int) -> list[Signer]:
    """Signers for the first ``count`` local payer keys (at least one)."""
    return [Signer(bytes(payer(i).key)) for i in range(max(1, count))]


def _ack(env: pb.OriginatorEnvelope, sent_at: float, acked_at: float) -> Ack:
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    return Ack(unsigned.originator_node_id, unsigned.originator_sequence_id,
               hashlib.sha256(env.SerializeToString()).hexdigest(), sent_at, acked_at)
