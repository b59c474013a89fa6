"""Take a snapshot of a testnet: every node's database, the chain at one block, health.

Each node's database is read in one repeatable-read transaction through the observers of
``shakedown.observe`` (envelope index with stored payers, vector clock, unsettled usage), so
what it holds and what it accounts for are seen at one instant. Only envelopes not seen before
are fetched and parsed (the set only grows; ``monotonic`` checks that). The chain is read at
one block number: canonical set, payers' balances and pending withdrawals, fees charged
(UsageSettled events up to that block), the rate registry.

    snap = Snapshotter(record).take(t=12.5, payers=["0xab..."], gateways={"gateway": "..."})
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from web3 import Web3

from refnode.proto import refnode_pb2 as pb
from shakedown.chain.contracts import Contracts
from shakedown.chain.records import ContractAddresses
from shakedown.chaos.observed import ChainView, NodeView, Snapshot, Stored
from shakedown.client import GatewayClient, NodeClient
from shakedown.observe import (
    read_envelope_blobs,
    read_envelope_index,
    read_unsettled_usage,
    read_vector_clock,
)
from shakedown.scenarios.probe import payload_digest

HEALTH_TIMEOUT_S = 2.0


def parse_stored(blob: bytes) -> tuple[str, int]:
    """(payload digest, fee in picodollars) of one stored originator envelope."""
    env = pb.OriginatorEnvelope.FromString(blob)
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    payer_env = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
    fee = unsigned.base_fee_picodollars + unsigned.congestion_fee_picodollars
    return payload_digest(payer_env.unsigned_client_envelope), int(fee)


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


class Snapshotter:
    """Connections kept per node (reopened after an error); one snapshot at a time."""

    def __init__(self, record: Mapping[str, Any], timeout_s: float = 5.0):
        self.timeout_s = timeout_s
        self.dsns: dict[str, str] = {n["name"]: n["dsn"] for n in record["nodes"]}
        self.grpc: dict[str, str] = {n["name"]: n["grpc"] for n in record["nodes"]}
        self._conns: dict[str, psycopg.Connection] = {}
        self._parsed: dict[tuple[int, int, str], tuple[str, int]] = {}
        self._lock = threading.Lock()
        self.w3 = Web3(Web3.HTTPProvider(record["chain"]["rpc"],
                                         request_kwargs={"timeout": timeout_s}))
        self.contracts = Contracts.at(self.w3, ContractAddresses.from_dict(record["contracts"]))

    def add_node(self, name: str, dsn: str, grpc: str) -> None:
        """A node that joined during the run (churn)."""
        with self._lock:
            self.dsns[name], self.grpc[name] = dsn, grpc

    # --- nodes ----------------------------------------------------------------------------

    def _conn(self, node: str) -> psycopg.Connection:
        conn = self._conns.get(node)
        if conn is None or conn.closed:
            ms = int(self.timeout_s * 1000)
            conn = psycopg.connect(self.dsns[node], connect_timeout=max(1, int(self.timeout_s)),
                                   autocommit=True, options=f"-c statement_timeout={ms}")
            self._conns[node] = conn
        return conn

    def read_node(self, node: str) -> NodeView:
        """One node's database in one transaction; an unreadable one says why."""
        try:
            conn = self._conn(node)
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                rows = read_envelope_index(conn)
                clock = read_vector_clock(conn)
                usage = read_unsettled_usage(conn)
                fresh = [(r.originator_node_id, r.sequence_id) for r in rows
                         if (r.originator_node_id, r.sequence_id, r.sha256.hex())
                         not in self._parsed]
                blobs = read_envelope_blobs(conn, fresh)
        except Exception as e:  # a stopped database must not stop the checkpoint
            broken = self._conns.pop(node, None)
            if broken is not None:
                broken.close()
            return NodeView(node, error=_first_line(e))
        for (o, s), blob in blobs.items():
            self._parsed[(o, s, hashlib.sha256(blob).hexdigest())] = parse_stored(blob)
        envelopes = {}
        for r in rows:
            key = (r.originator_node_id, r.sequence_id)
            payload, fee = self._parsed[(*key, r.sha256.hex())]
            envelopes[key] = Stored(r.sha256.hex(), payload, (r.payer or "").lower(), fee)
        return NodeView(node, envelopes=envelopes, clock=clock,
                        usage={(a.lower(), o): (u.message_count, u.spend_picodollars)
                               for (a, o), u in usage.items()})

    def serving(self, endpoint: str, gateway: bool = False) -> bool:
        try:
            if gateway:
                with GatewayClient(endpoint, timeout=HEALTH_TIMEOUT_S) as g:
                    return bool(g.health().serving)
            with NodeClient(endpoint, timeout=HEALTH_TIMEOUT_S) as n:
                return bool(n.health().serving)
        except Exception:
            return False

    # --- chain ----------------------------------------------------------------------------

    def read_chain(self, payers: list[str]) -> ChainView:
        """The chain at its current block (every read pinned to that block)."""
        c = self.contracts
        try:
            block = int(self.w3.eth.block_number)
            at: dict[str, Any] = {"block_identifier": block}
            canonical = frozenset(int(n[0]) for n in
                                  c.node_registry.functions.getCanonicalNodes().call(**at))
            settled: dict[str, int] = {}
            for e in c.payer_registry.events.UsageSettled().get_logs(from_block=0,
                                                                    to_block=block):
                who = str(e["args"]["payer"]).lower()
                settled[who] = settled.get(who, 0) + int(e["args"]["fee"])
            balances, pending = {}, {}
            for who in sorted({p.lower() for p in payers} | set(settled)):
                address = Web3.to_checksum_address(who)
                balances[who] = int(c.payer_registry.functions.getBalance(address).call(**at))
                pending[who] = int(c.payer_registry.functions.getPendingWithdrawal(address)
                                   .call(**at)[0])
            count = int(c.rate_registry.functions.getRatesCount().call(**at))
            rates = c.rate_registry.functions.getRates(0, count).call(**at) if count else []
        except Exception as e:
            return ChainView(error=_first_line(e))
        return ChainView(block, "", canonical, balances, pending, settled, count,
                         int(rates[-1][0]) if rates else None)

    # --- all of it ------------------------------------------------------------------------

    def take(self, t: float, payers: list[str], gateways: Mapping[str, str]) -> Snapshot:
        """Databases, health and the chain, in that order."""
        with self._lock:
            nodes = {}
            for name in sorted(self.dsns):
                view = self.read_node(name)
                nodes[name] = NodeView(view.name, view.error, view.envelopes, view.clock,
                                       view.usage, self.serving(self.grpc[name]))
            health = {g: self.serving(e, gateway=True) for g, e in sorted(gateways.items())}
            return Snapshot(t, nodes, health, self.read_chain(payers))

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()
