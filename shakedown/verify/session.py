"""One verify run's connections and shared reads, opened on first use and closed at the end.

The chain handle, each node's database connection, the registered signers, the rate schedule
and the envelope scan are read once per run, whichever check asks first.

    with VerifySession(config, target) as run:
        run.conn(target.node("node-200")).execute("SELECT 1")
"""

from __future__ import annotations

import hashlib
import re
from types import TracebackType

import psycopg

from shakedown.chain.ops import Chain
from shakedown.chain.records import Rates
from shakedown.errors import NotFoundError, UnreachableError
from shakedown.keys import admin_account
from shakedown.observe import read_blob_table
from shakedown.verify.envelopes import EnvelopeCache, EnvelopeScan, scan_envelopes
from shakedown.verify.plugin import VerifyConfig
from shakedown.verify.target import NodeTarget, Target

CONNECT_TIMEOUT_S = 5


def redact(dsn: str) -> str:
    """A DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


class VerifySession:
    """Lazily opened resources of one run; ``close`` releases every connection."""

    def __init__(self, config: VerifyConfig, target: Target) -> None:
        self.config = config
        self.target = target
        self._chain: Chain | None = None
        self._conns: dict[str, psycopg.Connection] = {}
        self.blob_tables: dict[str, str] = {}  # node -> the envelope-bytes table it has
        self._conn_errors: dict[str, str] = {}
        self._signers: dict[int, str] | None = None
        self._rates: list[Rates] | None = None
        self._scan: EnvelopeScan | None = None

    def __enter__(self) -> VerifySession:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def chain(self) -> Chain:
        if self._chain is None:
            # Read-only: the admin key is never used to sign anything here.
            self._chain = Chain.connect(self.target.chain_rpc, self.target.contracts,
                                        admin_account())
        return self._chain

    def conn(self, node: NodeTarget) -> psycopg.Connection:
        """The node's database; UnreachableError naming the node and the (redacted) DSN."""
        if node.name in self._conns:
            return self._conns[node.name]
        if node.name in self._conn_errors:
            raise UnreachableError(self._conn_errors[node.name])
        try:
            conn = psycopg.connect(node.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            self._conn_errors[node.name] = (f"{node.name}: database {redact(node.dsn)} "
                                            f"unreachable: {reason}")
            raise UnreachableError(self._conn_errors[node.name]) from e
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # snapshots in transaction()
        conn.read_only = True
        self._conns[node.name] = conn
        try:
            self.blob_tables[node.name] = read_blob_table(conn)
        except NotFoundError:
            self.blob_tables[node.name] = "none"  # the envelope checks say so themselves
        return conn

    def conns(self, nodes: list[NodeTarget]) -> tuple[dict[str, psycopg.Connection], list[str]]:
        """Connections to the reachable ones among ``nodes``, and a line per unreachable one."""
        found, errors = {}, []
        for node in nodes:
            try:
                found[node.name] = self.conn(node)
            except UnreachableError as e:
                errors.append(str(e))
        return found, errors

    def signers(self) -> dict[int, str]:
        """Node id -> signer address, for every node the NodeRegistry knows."""
        if self._signers is None:
            self._signers = {n.node_id: n.signer for n in self.chain().all_nodes()}
        return self._signers

    def rates(self) -> list[Rates]:
        if self._rates is None:
            self._rates = self.chain().rates()
        return self._rates

    def cache(self) -> EnvelopeCache | None:
        folder = self.config.envelope_cache
        if folder is None:
            return None
        where = f"{self.target.chain_rpc} {self.target.contracts.node_registry}"
        tag = hashlib.sha256(where.encode()).hexdigest()[:10]
        return EnvelopeCache(folder, f"{self.target.testnet.name}-{tag}")

    def scan(self) -> EnvelopeScan:
        """Every node's envelopes, judged once for all envelope checks."""
        if self._scan is None:
            conns, _ = self.conns(list(self.target.nodes))
            self._scan = scan_envelopes(conns, self.signers(), self.rates(),
                                        grace_s=self.config.rates_grace_s, cache=self.cache(),
                                        workers=self.config.workers)
            for node in self.target.nodes:
                if node.name not in conns:
                    self._scan.errors[node.name] = self._conn_errors.get(node.name, "unreachable")
        return self._scan

    def stats(self) -> dict[str, int]:
        """What the envelope checks cost this run (empty when none ran)."""
        if self._scan is None:
            return {}
        scan = self._scan
        buckets = {d for n in scan.nodes.values() for d in n.buckets.values()}
        return {"buckets": len(buckets), "rows_judged": scan.judged,
                "envelopes_opened": scan.opened}

    def describe_blob_tables(self) -> str:
        """``envelope blobs read from gateway_envelope_blobs (node-100, node-200)``, per table."""
        by_table: dict[str, list[str]] = {}
        for node, table in sorted(self.blob_tables.items()):
            by_table.setdefault(table, []).append(node)
        return "envelope blobs read from " + "; ".join(
            f"{table} ({', '.join(nodes)})" for table, nodes in sorted(by_table.items()))

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
