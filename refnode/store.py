"""PostgreSQL storage: migrations, the envelope tables, the vector clock and unsettled usage.

Each batch of envelopes is stored in one transaction with its vector-clock and usage
updates, so a crash can never leave an envelope without its accounting or a clock ahead of
what is stored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

import psycopg

from refnode.dbpool import Pool, open_pool
from refnode.envelopes import address_of

log = logging.getLogger("refnode.store")

MIGRATION_LOCK = 0x5EF0DE  # advisory lock id: one migrator at a time


@dataclass(frozen=True)
class StoredEnvelope:
    """One originator envelope as rows: what ``insert_envelopes`` writes."""

    originator_node_id: int
    sequence_id: int
    originator_ns: int
    topic: bytes
    payer: str
    expiry: int
    fee: int
    blob: bytes

    @property
    def minute(self) -> int:
        return self.originator_ns // 60_000_000_000


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every migration shipped in refnode/migrations, in order."""
    found = []
    for entry in resources.files("refnode.migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


class Store:
    """Async access to one node's database through a small connection pool."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self._payer_ids: dict[str, int] = {}

    @classmethod
    async def open(cls, dsn: str, max_size: int = 8, reconnect: bool = True) -> Store:
        """``reconnect=False`` is the planted bug REFNODE_DB_RECONNECT=0 (refnode.dbpool)."""
        return cls(await open_pool(dsn, max_size, reconnect))

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied."""
        applied = []
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                               "(version INT PRIMARY KEY, applied_at TIMESTAMP DEFAULT now())")
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, sql in migrations():
                if version not in done:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)",
                                       (version,))
                    applied.append(version)
        if applied:
            log.info("migrated schema to version %d", applied[-1])
        return applied

    async def ensure_node_info(self, node_id: int, public_key: bytes) -> None:
        """Record who this database belongs to, by its signer's 65-byte uncompressed public
        key as xmtpd does; refuse a database of another node. A row from before, holding the
        signer's 20-byte address, is rewritten to the key when the address is this signer's."""
        address = bytes.fromhex(address_of(public_key)[2:])
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT node_id, public_key FROM node_info FOR UPDATE")
            row = await cur.fetchone()
            if row is None:
                await conn.execute("INSERT INTO node_info (node_id, public_key) VALUES (%s, %s)",
                                   (node_id, public_key))
                return
            stored = bytes(row[1])
            if row[0] != node_id or stored not in (public_key, address):
                raise RuntimeError(f"database belongs to node {row[0]}, not node {node_id}; "
                                   "give each node its own database")
            if stored == address:
                await conn.execute("UPDATE node_info SET public_key = %s", (public_key,))
                log.info("node_info: the signer's address replaced by its public key")

    async def vector_clock(self) -> dict[int, int]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT originator_node_id, originator_sequence_id FROM gateway_envelopes_latest")
            return {int(n): int(s) for n, s in await cur.fetchall()}

    async def insert_envelopes(self, rows: list[StoredEnvelope],
                               originated: list[tuple[bytes, int]] | None = None) -> None:
        """Store a batch with its clock and usage updates in one transaction; skip duplicates.
        ``originated``: (payer digest, sequence id) of this node's own new envelopes."""
        if not rows:
            return
        async with self.pool.connection() as conn:
            async with conn.transaction():
                payer_ids = await self._payer_ids_for(conn, {r.payer for r in rows})
                await _insert_rows(conn, rows, payer_ids)
                if originated:
                    await conn.execute(
                        "INSERT INTO originated_payer_envelopes (payer_digest, "
                        "originator_sequence_id) SELECT * FROM unnest(%s::bytea[], "
                        "%s::bigint[])", ([d for d, _ in originated], [s for _, s in originated]))
        # Cached only once committed: another connection must not use an id it cannot see yet.
        self._payer_ids.update(payer_ids)

    async def _payer_ids_for(self, conn: psycopg.AsyncConnection,
                             payers: set[str]) -> dict[str, int]:
        known = {p: self._payer_ids[p] for p in payers if p in self._payer_ids}
        missing = sorted(payers - known.keys())
        if missing:
            cur = await conn.execute(
                "INSERT INTO payers (address) SELECT unnest(%s::text[]) "
                "ON CONFLICT (address) DO UPDATE SET address = EXCLUDED.address "
                "RETURNING address, id", (missing,))
            known.update({a: i for a, i in await cur.fetchall()})
        return known

    async def forget_unsettled_usage(self, node_id: int) -> int:
        """The planted bug REFNODE_BUG_FORGET_USAGE_ON_RESTART: delete the usage of the first
        payer (by address) of this node's own envelopes past its last settled report.
        Returns the rows deleted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "WITH settled AS (SELECT coalesce(max(end_sequence_id), 0) AS top FROM "
                "payer_reports WHERE originator_node_id = %(n)s AND submission_status = 2), "
                "victim AS (SELECT u.payer_id FROM unsettled_usage u JOIN payers p ON "
                "p.id = u.payer_id, settled WHERE u.originator_id = %(n)s AND "
                "u.last_sequence_id > settled.top ORDER BY p.address LIMIT 1) "
                "DELETE FROM unsettled_usage u USING victim, settled WHERE "
                "u.originator_id = %(n)s AND u.payer_id = victim.payer_id AND "
                "u.last_sequence_id > settled.top", {"n": node_id})
            return cur.rowcount

    async def read_after(self, originator: int, after_sequence: int, limit: int) -> list[bytes]:
        """Envelopes of one originator with sequence ids above ``after_sequence``, in order."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT originator_envelope FROM gateway_envelopes_blob "
                "WHERE originator_node_id = %s AND originator_sequence_id > %s "
                "ORDER BY originator_sequence_id LIMIT %s", (originator, after_sequence, limit))
            return [bytes(r[0]) for r in await cur.fetchall()]

    async def originated(self, digests: list[bytes]) -> set[bytes]:
        """Which of these payer digests this node already originated (stored) an envelope of."""
        if not digests:
            return set()
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT payer_digest FROM originated_payer_envelopes "
                                     "WHERE payer_digest = ANY(%s)", (digests,))
            return {bytes(r[0]) for r in await cur.fetchall()}

    async def latest(self, originator: int) -> int:
        """The highest stored sequence id of ``originator`` (0: none)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT originator_sequence_id FROM gateway_envelopes_latest "
                "WHERE originator_node_id = %s", (originator,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def read_one(self, originator: int, sequence_id: int) -> bytes | None:
        """The stored envelope at (originator, sequence id), if any."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT originator_envelope FROM gateway_envelopes_blob "
                "WHERE originator_node_id = %s AND originator_sequence_id = %s",
                (originator, sequence_id))
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def record_misbehavior(self, offender: int, kind: str, sequence_id: int,
                                 evidence: bytes, conflicting: bytes | None,
                                 detail: str) -> None:
        """Keep the evidence of a refused stream; a repeat of the same offence counts up."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO misbehavior_reports (offender_node_id, kind, sequence_id, evidence, "
                "conflicting, detail) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (offender_node_id, kind, sequence_id) DO UPDATE SET "
                "times_seen = misbehavior_reports.times_seen + 1, last_seen = now()",
                (offender, kind, sequence_id, evidence, conflicting, detail))

    async def originators(self) -> list[int]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT originator_node_id FROM gateway_envelopes_latest")
            return sorted(int(r[0]) for r in await cur.fetchall())


async def _insert_rows(conn: psycopg.AsyncConnection, rows: list[StoredEnvelope],
                       payer_ids: dict[str, int]) -> None:
    inserted = await conn.execute(
        "INSERT INTO gateway_envelopes_meta "
        "(originator_node_id, originator_sequence_id, topic, payer_id, expiry) "
        "SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bytea[], %s::int[], %s::bigint[]) "
        "ON CONFLICT DO NOTHING RETURNING originator_node_id, originator_sequence_id",
        ([r.originator_node_id for r in rows], [r.sequence_id for r in rows],
         [r.topic for r in rows], [payer_ids[r.payer] for r in rows], [r.expiry for r in rows]))
    fresh = {(int(n), int(s)) for n, s in await inserted.fetchall()}
    # Duplicates arrive only when a resumed stream races the old one; an envelope's usage
    # must count once, so everything below uses the rows that were new.
    rows = [r for r in rows if (r.originator_node_id, r.sequence_id) in fresh]
    if not rows:
        return
    await conn.execute(
        "INSERT INTO gateway_envelopes_blob "
        "(originator_node_id, originator_sequence_id, originator_envelope) "
        "SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bytea[])",
        ([r.originator_node_id for r in rows], [r.sequence_id for r in rows],
         [r.blob for r in rows]))
    latest: dict[int, int] = {}
    usage: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        latest[r.originator_node_id] = max(latest.get(r.originator_node_id, 0), r.sequence_id)
        u = usage[(payer_ids[r.payer], r.originator_node_id, r.minute)]
        u[0] += r.fee
        u[1] = max(u[1], r.sequence_id)
        u[2] += 1
    await conn.execute(
        "INSERT INTO gateway_envelopes_latest (originator_node_id, originator_sequence_id) "
        "SELECT * FROM unnest(%s::int[], %s::bigint[]) ON CONFLICT (originator_node_id) "
        "DO UPDATE SET originator_sequence_id = GREATEST(gateway_envelopes_latest"
        ".originator_sequence_id, EXCLUDED.originator_sequence_id), gateway_time = now()",
        (list(latest), list(latest.values())))
    keys = list(usage)
    await conn.execute(
        "INSERT INTO unsettled_usage (payer_id, originator_id, minutes_since_epoch, "
        "spend_picodollars, last_sequence_id, message_count) "
        "SELECT * FROM unnest(%s::int[], %s::int[], %s::int[], %s::bigint[], %s::bigint[], "
        "%s::int[]) ON CONFLICT (payer_id, originator_id, minutes_since_epoch) DO UPDATE SET "
        "spend_picodollars = unsettled_usage.spend_picodollars + EXCLUDED.spend_picodollars, "
        "last_sequence_id = GREATEST(unsettled_usage.last_sequence_id, EXCLUDED.last_sequence_id), "
        "message_count = unsettled_usage.message_count + EXCLUDED.message_count",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
         [usage[k][0] for k in keys], [usage[k][1] for k in keys], [usage[k][2] for k in keys]))
