"""Read a node's database directly, on xmtpd's table names, so the same reads work on xmtpd.

Every function takes an open psycopg connection and returns plain data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg


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
          "FROM gateway_envelopes_blob"
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
