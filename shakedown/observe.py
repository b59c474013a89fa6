"""Read a node's database directly, on xmtpd's table names, so the same reads work on xmtpd.

Every function takes an open psycopg connection and returns plain data. The envelope bytes
live in ``gateway_envelopes_blob`` (refnode, and xmtpd since its migration 00023) or in
``gateway_envelope_blobs`` (xmtpd before it): ``read_blob_table`` says which, once per
connection, and every read of the bytes uses it.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import psycopg

from shakedown.errors import NotFoundError

META_TABLE = "gateway_envelopes_meta"
BLOB_TABLES = ("gateway_envelopes_blob", "gateway_envelope_blobs")  # new name, old name
_blob_tables: weakref.WeakKeyDictionary[psycopg.Connection, str] = weakref.WeakKeyDictionary()


def read_blob_table(conn: psycopg.Connection) -> str:
    """The envelope-bytes table this database has (cached per connection).

    Example: ``read_blob_table(conn) == "gateway_envelope_blobs"`` on xmtpd before 00023.
    """
    found = _blob_tables.get(conn)
    if found is None:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
                           BLOB_TABLES).fetchone()
        have = [t for t, present in zip(BLOB_TABLES, row or (), strict=False) if present]
        if not have:
            raise NotFoundError(f"database {conn.info.dbname}: no envelope table "
                                f"({' or '.join(BLOB_TABLES)}); is it a node's database?")
        found = _blob_tables[conn] = have[0]
    return found


def envelope_tables(conn: psycopg.Connection) -> tuple[str, str]:
    """(meta table, blob table) of this database, the blob table under its name here."""
    return META_TABLE, read_blob_table(conn)


def _envelope_table(table: str) -> str:
    if table != META_TABLE and table not in BLOB_TABLES:
        raise ValueError(f"not an envelope table: {table!r}")
    return table


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def read_envelope_count(conn: psycopg.Connection) -> int:
    return _count(conn, "gateway_envelopes_meta")


def read_vector_clock(conn: psycopg.Connection) -> dict[int, int]:
    rows = conn.execute("SELECT originator_node_id, originator_sequence_id "
                        "FROM gateway_envelopes_latest").fetchall()
    return {int(n): int(s) for n, s in rows}


def read_staged_count(conn: psycopg.Connection) -> int:
    return _count(conn, "staged_originator_envelopes")


def read_node_info(conn: psycopg.Connection) -> tuple[int, bytes] | None:
    row = conn.execute("SELECT node_id, public_key FROM node_info").fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


def read_sequence_gaps(conn: psycopg.Connection, originator: int, limit: int = 100) -> list[int]:
    """Sequence ids of ``originator`` missing below its highest stored one."""
    rows = conn.execute(
        "SELECT s FROM generate_series(1, (SELECT coalesce(max(originator_sequence_id), 0) "
        "FROM gateway_envelopes_meta WHERE originator_node_id = %(o)s)) AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM gateway_envelopes_meta m WHERE "
        "m.originator_node_id = %(o)s AND m.originator_sequence_id = s) ORDER BY s LIMIT %(l)s",
        {"o": originator, "l": limit}).fetchall()
    return [int(r[0]) for r in rows]


def read_envelope_digests(conn: psycopg.Connection, originator: int | None = None
                          ) -> dict[tuple[int, int], str]:
    """(originator, sequence id) -> sha256 of the stored envelope bytes."""
    sql = "SELECT originator_node_id, originator_sequence_id, originator_envelope " \
          f"FROM {read_blob_table(conn)}"
    params: tuple = ()
    if originator is not None:
        sql += " WHERE originator_node_id = %s"
        params = (originator,)
    with conn.cursor(binary=True) as cur:
        cur.execute(sql, params)
        return {(int(n), int(s)): hashlib.sha256(bytes(b)).hexdigest()
                for n, s, b in cur.fetchall()}


@dataclass(frozen=True)
class Usage:
    spend_picodollars: int
    message_count: int
    last_sequence_id: int


def read_unsettled_usage(conn: psycopg.Connection) -> dict[tuple[str, int], Usage]:
    """(payer address, originator) -> usage summed over minutes."""
    rows = conn.execute(
        "SELECT p.address, u.originator_id, sum(u.spend_picodollars), sum(u.message_count), "
        "max(u.last_sequence_id) FROM unsettled_usage u JOIN payers p ON p.id = u.payer_id "
        "GROUP BY p.address, u.originator_id").fetchall()
    return {(a, int(o)): Usage(int(s), int(c), int(last)) for a, o, s, c, last in rows}


def read_payer_of_envelopes(conn: psycopg.Connection, originator: int) -> dict[int, str]:
    """sequence id -> payer address, for one originator."""
    rows = conn.execute(
        "SELECT m.originator_sequence_id, p.address FROM gateway_envelopes_meta m "
        "JOIN payers p ON p.id = m.payer_id WHERE m.originator_node_id = %s", (originator,))
    return {int(s): a for s, a in rows.fetchall()}


# -- reads for the verify suite: aggregates computed by the server, rows only on demand -----

ENVELOPE_TABLES = (META_TABLE, BLOB_TABLES[0])  # refnode's names; ``envelope_tables`` reads them


@dataclass(frozen=True)
class OriginatorDigest:
    """One originator's stored envelopes in one aggregate: equal digests, equal envelope sets."""

    count: int
    max_sequence_id: int
    digest: str  # md5 over the ordered per-envelope md5s


def read_originator_digests(conn: psycopg.Connection) -> dict[int, OriginatorDigest]:
    """originator -> digest of its stored envelope bytes (computed in SQL, nothing pulled).

    Example: ``read_originator_digests(conn)[100].digest == other[100].digest``
    """
    rows = conn.execute(
        "SELECT originator_node_id, count(*), max(originator_sequence_id), "
        "md5(string_agg(originator_sequence_id::text || ':' || md5(originator_envelope), ',' "
        f"ORDER BY originator_sequence_id)) FROM {read_blob_table(conn)} GROUP BY 1").fetchall()
    return {int(o): OriginatorDigest(int(c), int(m), str(d)) for o, c, m, d in rows}


def read_row_digests(conn: psycopg.Connection, originator: int) -> dict[int, str]:
    """sequence id -> md5 of the stored envelope, for one originator (to locate a difference)."""
    rows = conn.execute(
        f"SELECT originator_sequence_id, md5(originator_envelope) FROM {read_blob_table(conn)} "
        "WHERE originator_node_id = %s", (originator,)).fetchall()
    return {int(s): str(d) for s, d in rows}


@dataclass(frozen=True)
class SequenceSummary:
    """Sequence ids of one originator in one table: no gap and no duplicate when
    ``count == distinct == max_id`` and ``min_id == 1``."""

    count: int
    distinct: int
    min_id: int
    max_id: int


def read_sequence_summary(conn: psycopg.Connection, table: str = META_TABLE
                          ) -> dict[int, SequenceSummary]:
    """originator -> count, distinct count, lowest and highest sequence id stored in ``table``."""
    table = _envelope_table(table)
    rows = conn.execute(
        f"SELECT originator_node_id, count(*), count(DISTINCT originator_sequence_id), "
        f"min(originator_sequence_id), max(originator_sequence_id) FROM {table} GROUP BY 1"
    ).fetchall()
    return {int(o): SequenceSummary(int(c), int(d), int(lo), int(hi)) for o, c, d, lo, hi in rows}


def read_missing_sequences(conn: psycopg.Connection, originator: int, table: str,
                           limit: int = 5) -> list[int]:
    """Sequence ids of ``originator`` missing from ``table`` below its highest stored one."""
    table = _envelope_table(table)
    rows = conn.execute(
        f"SELECT s FROM generate_series(1, (SELECT coalesce(max(originator_sequence_id), 0) "
        f"FROM {table} WHERE originator_node_id = %(o)s)) AS s WHERE NOT EXISTS (SELECT 1 FROM "
        f"{table} t WHERE t.originator_node_id = %(o)s AND t.originator_sequence_id = s) "
        f"ORDER BY s LIMIT %(l)s", {"o": originator, "l": limit}).fetchall()
    return [int(r[0]) for r in rows]


def read_duplicate_sequences(conn: psycopg.Connection, originator: int, table: str,
                             limit: int = 5) -> dict[int, int]:
    """sequence id -> copies, for sequence ids of ``originator`` stored more than once."""
    table = _envelope_table(table)
    rows = conn.execute(
        f"SELECT originator_sequence_id, count(*) FROM {table} WHERE originator_node_id = %s "
        f"GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT %s", (originator, limit)).fetchall()
    return {int(s): int(c) for s, c in rows}


class IndexRow(NamedTuple):
    """One stored envelope without its bytes: key, sha256 of the bytes, payer named in meta."""

    originator_node_id: int
    sequence_id: int
    sha256: bytes
    payer: str | None  # None when the meta row (or its payer) is missing


_INDEX = ("SELECT b.originator_node_id, b.originator_sequence_id, sha256(b.originator_envelope), "
          "p.address FROM {blob} b LEFT JOIN gateway_envelopes_meta m "
          "ON m.originator_node_id = b.originator_node_id "
          "AND m.originator_sequence_id = b.originator_sequence_id "
          "LEFT JOIN payers p ON p.id = m.payer_id")
BUCKET = 10_000  # sequence ids per index bucket: a growing originator changes only its last


def read_envelope_index(conn: psycopg.Connection, originator: int | None = None,
                        bucket: int | None = None, size: int = BUCKET) -> list[IndexRow]:
    """Stored envelopes' keys, content digests and stored payers, ordered by key.

    About 0.35 s per 100k rows; ``originator`` (and ``bucket``: sequence ids
    ``bucket*size .. bucket*size + size - 1``) limit it to one originator's rows.
    """
    where, params = "", {"o": originator, "lo": 0, "hi": 0}
    if originator is not None:
        where = "WHERE b.originator_node_id = %(o)s"
        if bucket is not None:
            where += " AND b.originator_sequence_id >= %(lo)s AND b.originator_sequence_id < %(hi)s"
            params.update(lo=bucket * size, hi=(bucket + 1) * size)
    with conn.cursor(binary=True) as cur:
        cur.execute(f"{_INDEX.format(blob=read_blob_table(conn))} {where} ORDER BY 1, 2, 4",
                    params)
        return [IndexRow(*r) for r in cur.fetchall()]


def index_digest(rows: list[IndexRow]) -> str:
    """The digest ``read_index_digests`` computes in SQL, computed over rows already read."""
    text = ",".join(f"{r.originator_node_id}:{r.sequence_id}:{r.sha256.hex()}:{r.payer or ''}"
                    for r in rows)
    return hashlib.md5(text.encode()).hexdigest()


def read_index_digests(conn: psycopg.Connection, size: int = BUCKET
                       ) -> dict[tuple[int, int], tuple[int, str]]:
    """(originator, bucket) -> (rows, digest of the bucket's ordered index rows), by the server.

    Equal to ``index_digest(read_envelope_index(conn, originator, bucket))`` without pulling
    a row: equal digests on two nodes mean equal keys, bytes and stored payers.
    """
    rows = conn.execute(
        "SELECT b.originator_node_id, b.originator_sequence_id / %(size)s, count(*), "
        "md5(string_agg(b.originator_node_id::text || ':' || b.originator_sequence_id::text "
        "|| ':' || encode(sha256(b.originator_envelope), 'hex') || ':' || coalesce(p.address, ''),"
        " ',' ORDER BY b.originator_sequence_id, p.address)) "
        f"FROM {read_blob_table(conn)} b LEFT JOIN gateway_envelopes_meta m "
        "ON m.originator_node_id = b.originator_node_id "
        "AND m.originator_sequence_id = b.originator_sequence_id "
        "LEFT JOIN payers p ON p.id = m.payer_id GROUP BY 1, 2", {"size": size}).fetchall()
    return {(int(o), int(k)): (int(c), str(d)) for o, k, c, d in rows}


def read_envelope_blobs(conn: psycopg.Connection, keys: list[tuple[int, int]]
                        ) -> dict[tuple[int, int], bytes]:
    """(originator, sequence id) -> stored envelope bytes, for the given keys only."""
    if not keys:
        return {}
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT b.originator_node_id, b.originator_sequence_id, b.originator_envelope "
            f"FROM {read_blob_table(conn)} b JOIN unnest(%s::int[], %s::bigint[]) AS k(o, s) "
            "ON b.originator_node_id = k.o AND b.originator_sequence_id = k.s",
            ([o for o, _ in keys], [s for _, s in keys]))
        return {(int(o), int(s)): bytes(b) for o, s, b in cur.fetchall()}


@dataclass(frozen=True)
class MinuteUsage:
    spend_picodollars: int
    message_count: int
    last_sequence_id: int


def read_usage_by_minute(conn: psycopg.Connection) -> dict[tuple[str, int, int], MinuteUsage]:
    """(payer address, originator, minute since epoch) -> unsettled usage, as stored."""
    rows = conn.execute(
        "SELECT p.address, u.originator_id, u.minutes_since_epoch, u.spend_picodollars, "
        "u.message_count, u.last_sequence_id FROM unsettled_usage u "
        "LEFT JOIN payers p ON p.id = u.payer_id").fetchall()
    return {(str(a), int(o), int(m)): MinuteUsage(int(s), int(c), int(last))
            for a, o, m, s, c, last in rows}


def read_unsettled_usage_per_payer(conn: psycopg.Connection) -> dict[str, int]:
    """payer address -> unsettled spend in picodollars, over every originator and minute."""
    rows = conn.execute(
        "SELECT p.address, sum(u.spend_picodollars) FROM unsettled_usage u "
        "JOIN payers p ON p.id = u.payer_id GROUP BY 1").fetchall()
    return {str(a): int(s) for a, s in rows}


def read_payer_reports_by_status(conn: psycopg.Connection) -> dict[tuple[int, int], int]:
    """(submission_status, attestation_status) -> number of payer reports.

    submission: 0 pending, 1 submitted, 2 settled, 3 rejected; attestation: 0 pending,
    1 approved, 2 rejected (xmtpd's codes).
    """
    rows = conn.execute("SELECT submission_status, attestation_status, count(*) "
                        "FROM payer_reports GROUP BY 1, 2").fetchall()
    return {(int(s), int(a)): int(c) for s, a, c in rows}


@dataclass(frozen=True)
class StoredReport:
    """A payer report as one node's database holds it."""

    id: bytes
    originator_node_id: int
    start_sequence_id: int
    end_sequence_id: int
    end_minute_since_epoch: int
    payers_merkle_root: bytes
    active_node_ids: tuple[int, ...]
    submitted_report_index: int | None


SETTLED = 2  # payer_reports.submission_status


def read_settled_reports(conn: psycopg.Connection) -> list[StoredReport]:
    """Reports this node records as settled on-chain, by originator and start sequence."""
    rows = conn.execute(
        "SELECT id, originator_node_id, start_sequence_id, end_sequence_id, "
        "end_minute_since_epoch, payers_merkle_root, active_node_ids, submitted_report_index "
        "FROM payer_reports WHERE submission_status = %s ORDER BY 2, 3", (SETTLED,)).fetchall()
    return [StoredReport(bytes(i), int(o), int(s), int(e), int(m), bytes(r),
                         tuple(int(n) for n in nodes), None if x is None else int(x))
            for i, o, s, e, m, r, nodes, x in rows]
