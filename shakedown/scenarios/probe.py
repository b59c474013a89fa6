"""Watch the nodes' databases during a run: periodic samples into the history, final stores.

Reads go straight to each node's PostgreSQL (never the node's API), with short timeouts, so a
stopped or partitioned node shows up as an error sample instead of stalling the run.

    probe = Probe({"node-100": dsn, ...})
    probe.sample()        # {"node-100": {"count": 120, "clock": {"100": 60, "200": 60}}, ...}
    probe.store("node-100")  # {(100, 1): (envelope digest, payload digest), ...}
    probe.head()             # the chain's block number, when the probe has the chain's RPC
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from web3 import Web3

from refnode.proto import refnode_pb2 as pb
from shakedown.observe import read_envelope_count, read_vector_clock
from shakedown.scenarios.checker import Store

PAYLOAD_DIGEST_CHARS = 32


def payload_digest(unsigned_client_envelope: bytes) -> str:
    """What identifies one publish across nodes: a digest of the client envelope bytes."""
    return hashlib.sha256(unsigned_client_envelope).hexdigest()[:PAYLOAD_DIGEST_CHARS]


def envelope_keys(blob: bytes) -> tuple[int, int, str, str]:
    """(originator, sequence id, sha256 of the bytes, payload digest) of one stored envelope."""
    env = pb.OriginatorEnvelope.FromString(blob)
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    payer = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
    return (unsigned.originator_node_id, unsigned.originator_sequence_id,
            hashlib.sha256(blob).hexdigest(), payload_digest(payer.unsigned_client_envelope))


class Probe:
    """One connection per node, reopened after errors; safe to use from one thread at a time."""

    def __init__(self, dsns: Mapping[str, str], timeout_s: float = 2.0, rpc: str | None = None):
        self.dsns = dict(dsns)
        self.timeout_s = timeout_s
        self._conns: dict[str, psycopg.Connection] = {}
        self._lock = threading.Lock()
        self._w3 = None if rpc is None else Web3(Web3.HTTPProvider(
            rpc, request_kwargs={"timeout": timeout_s}))

    def watch(self, node: str, dsn: str) -> None:
        """Sample ``node`` too from now on (a node that joined during the run)."""
        with self._lock:
            self.dsns[node] = dsn

    def head(self) -> int | None:
        """The chain's block number (samples carry it, so chain events can be placed in
        scenario time); None without an RPC or when the chain does not answer."""
        if self._w3 is None:
            return None
        try:
            return int(self._w3.eth.block_number)
        except Exception:  # a chain fault must not stop sampling
            return None

    def _conn(self, node: str) -> psycopg.Connection:
        conn = self._conns.get(node)
        if conn is None or conn.closed:
            ms = int(self.timeout_s * 1000)
            conn = psycopg.connect(self.dsns[node], connect_timeout=max(1, int(self.timeout_s)),
                                   autocommit=True, options=f"-c statement_timeout={ms}")
            self._conns[node] = conn
        return conn

    def _read(self, node: str, fn: Callable[[psycopg.Connection], Any]) -> Any:
        try:
            return fn(self._conn(node))
        except Exception:
            conn = self._conns.pop(node, None)
            if conn is not None:
                conn.close()
            raise

    def sample(self) -> dict[str, dict[str, Any]]:
        """Each node's envelope count and vector clock, or the error that prevented the read."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for node in self.dsns:
                try:
                    count = self._read(node, read_envelope_count)
                    clock = self._read(node, read_vector_clock)
                    out[node] = {"count": count, "clock": {str(k): v for k, v in clock.items()}}
                except Exception as e:
                    out[node] = {"error": f"{type(e).__name__}: {str(e).strip()[:120]}"}
        return out

    def store(self, node: str, timeout_s: float = 60.0) -> Store:
        """Every envelope the node holds, keyed by (originator, sequence id)."""
        ms = int(timeout_s * 1000)
        with psycopg.connect(self.dsns[node], connect_timeout=max(1, int(self.timeout_s)),
                             autocommit=True, options=f"-c statement_timeout={ms}") as conn, \
                conn.cursor(binary=True) as cur:
            cur.execute("SELECT originator_envelope FROM gateway_envelopes_blob")
            found = {}
            for (blob,) in cur:
                o, s, digest, payload = envelope_keys(bytes(blob))
                found[(o, s)] = (digest, payload)
            return found

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()


class Sampler:
    """Samples every ``interval_s`` into the history until stopped (one daemon thread)."""

    def __init__(self, probe: Probe, record: Callable[..., object],
                 interval_s: float = 0.5):
        self.probe, self.record, self.interval_s = probe, record, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.last: dict[str, dict[str, Any]] = {}

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last = self.probe.sample()
            block = self.probe.head()
            self.record(nodes=self.last, **({} if block is None else {"block": block}))
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
