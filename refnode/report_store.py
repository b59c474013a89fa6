"""Payer reports in the node's database: ``payer_reports``, ``payer_report_attestations``, and
the per-payer fees of a range of one originator's stored envelopes.

Status codes are xmtpd's. ``attestation_status`` is this node's own verdict on the report;
``submission_status`` follows the report on-chain (pending -> submitted -> settled), or
``rejected`` when it can never be submitted.

    reports = ReportStore(store.pool)
    summary = await reports.range_summary(100, 0, 42, check_fee)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from refnode.dbpool import Pool
from refnode.proto import refnode_pb2 as pb
from refnode.report_spec import ReportSpec

ATTESTATION_PENDING, ATTESTATION_APPROVED, ATTESTATION_REJECTED = 0, 1, 2
SUBMISSION_PENDING, SUBMISSION_SUBMITTED, SUBMISSION_SETTLED, SUBMISSION_REJECTED = 0, 1, 2, 3
PAGE = 2000  # envelopes read per query when summing a range

_COLUMNS = ("id, originator_node_id, start_sequence_id, end_sequence_id, end_minute_since_epoch, "
            "payers_merkle_root, active_node_ids, submission_status, attestation_status, "
            "submitted_report_index")


@dataclass(frozen=True)
class ReportRow:
    """One ``payer_reports`` row."""

    id: bytes
    spec: ReportSpec
    submission_status: int = SUBMISSION_PENDING
    attestation_status: int = ATTESTATION_PENDING
    submitted_report_index: int | None = None


@dataclass(frozen=True)
class Envelope:
    """What a report needs of one stored envelope."""

    sequence_id: int
    payer: str
    originator_ns: int
    base_fee: int
    congestion_fee: int
    size: int             # bytes of the client envelope
    retention_days: int


@dataclass
class RangeSummary:
    """One originator's envelopes (start, end] as this node stores them."""

    count: int = 0
    last_sequence_id: int = 0
    last_minute: int = 0
    fees: dict[str, int] = field(default_factory=dict)   # payer -> picodollars
    mispriced: str | None = None                         # the first fee this node disputes


def _row(raw: tuple) -> ReportRow:  # type: ignore[type-arg]
    rid, origin, start, end, minute, root, nodes, submission, attestation, index = raw
    spec = ReportSpec(int(origin), int(start), int(end), int(minute), bytes(root),
                      tuple(int(n) for n in nodes))
    return ReportRow(bytes(rid), spec, int(submission), int(attestation),
                     None if index is None else int(index))


def parse_envelope(sequence_id: int, payer: str | None, blob: bytes) -> Envelope:
    """Fees and pricing inputs of one stored originator envelope (no signature checks: the
    envelope was checked when it was stored)."""
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(
        pb.OriginatorEnvelope.FromString(blob).unsigned_originator_envelope)
    payer_env = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
    return Envelope(sequence_id, payer or "", unsigned.originator_ns,
                    unsigned.base_fee_picodollars, unsigned.congestion_fee_picodollars,
                    len(payer_env.unsigned_client_envelope), payer_env.message_retention_days)


def _summarize(summary: RangeSummary, rows: list[tuple[int, str | None, bytes]],
               check_fee: Callable[[Envelope], str | None]) -> None:
    for sequence_id, payer, blob in rows:
        env = parse_envelope(int(sequence_id), payer, bytes(blob))
        summary.count += 1
        summary.last_sequence_id = env.sequence_id
        summary.last_minute = env.originator_ns // 60_000_000_000
        summary.fees[env.payer] = summary.fees.get(env.payer, 0) + env.base_fee \
            + env.congestion_fee
        if summary.mispriced is None:
            summary.mispriced = check_fee(env)


class ReportStore:
    """Async reads and writes of the payer-report tables over the node's pool."""

    def __init__(self, pool: Pool):
        self.pool = pool

    async def range_summary(self, originator: int, start: int, end: int,
                            check_fee: Callable[[Envelope], str | None]) -> RangeSummary:
        """Per-payer fees of ``originator``'s stored envelopes in (start, end], paged; every
        envelope passes through ``check_fee`` until one is disputed."""
        summary = RangeSummary()
        after = start
        while after < end:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT m.originator_sequence_id, p.address, b.originator_envelope "
                    "FROM gateway_envelopes_meta m JOIN gateway_envelopes_blob b "
                    "ON b.originator_node_id = m.originator_node_id "
                    "AND b.originator_sequence_id = m.originator_sequence_id "
                    "LEFT JOIN payers p ON p.id = m.payer_id "
                    "WHERE m.originator_node_id = %s AND m.originator_sequence_id > %s "
                    "AND m.originator_sequence_id <= %s ORDER BY 1 LIMIT %s",
                    (originator, after, end, PAGE), binary=True)
                rows = await cur.fetchall()
            if not rows:
                break
            # Parsing thousands of envelopes would stall the event loop; a thread does it.
            await asyncio.to_thread(_summarize, summary, rows, check_fee)
            after = summary.last_sequence_id
        return summary

    async def get(self, report_id: bytes) -> ReportRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM payer_reports WHERE id = %s",
                                     (report_id,))
            raw = await cur.fetchone()
        return _row(raw) if raw else None

    async def insert(self, row: ReportRow) -> bool:
        """Record a report; False when this node already holds it (its row is kept)."""
        s = row.spec
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO payer_reports (id, originator_node_id, start_sequence_id, "
                "end_sequence_id, end_minute_since_epoch, payers_merkle_root, active_node_ids, "
                "submission_status, attestation_status, submitted_report_index) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (row.id, s.originator_node_id, s.start_sequence_id, s.end_sequence_id,
                 s.end_minute_since_epoch, s.payers_hash, list(s.node_ids),
                 row.submission_status, row.attestation_status, row.submitted_report_index))
            return cur.rowcount == 1

    async def set_attestation(self, report_id: bytes, status: int) -> None:
        """This node's verdict; a decided verdict is never changed."""
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE payer_reports SET attestation_status = %s "
                               "WHERE id = %s AND attestation_status = 0", (status, report_id))

    async def set_submission(self, report_id: bytes, status: int,
                             index: int | None = None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE payer_reports SET submission_status = %s, "
                "submitted_report_index = coalesce(%s, submitted_report_index) WHERE id = %s",
                (status, index, report_id))

    async def reject_from(self, originator: int, start: int) -> int:
        """Mark ``originator``'s pending reports starting at or after ``start`` rejected: none of
        them can be submitted once the report they continue is gone. Returns how many."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE payer_reports SET submission_status = 3 WHERE originator_node_id = %s "
                "AND submission_status = 0 AND start_sequence_id >= %s", (originator, start))
            return cur.rowcount

    async def reject_before(self, originator: int, chain_end: int) -> int:
        """Mark ``originator``'s pending reports that start before ``chain_end`` rejected: the
        chain has moved past them. Returns how many."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE payer_reports SET submission_status = 3 WHERE originator_node_id = %s "
                "AND submission_status = 0 AND start_sequence_id < %s", (originator, chain_end))
            return cur.rowcount

    async def add_attestation(self, report_id: bytes, node_id: int, signature: bytes) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO payer_report_attestations (payer_report_id, node_id, signature) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (report_id, node_id, signature))

    async def attestations(self, report_id: bytes) -> dict[int, bytes]:
        """node id -> signature, for the attestations this node holds for a report."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT node_id, signature FROM payer_report_attestations "
                                     "WHERE payer_report_id = %s", (report_id,))
            return {int(n): bytes(s) for n, s in await cur.fetchall()}

    async def of_originator(self, originator: int, submission: int) -> list[ReportRow]:
        """``originator``'s reports in one submission status, by start sequence."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM payer_reports WHERE originator_node_id = %s "
                "AND submission_status = %s ORDER BY start_sequence_id, created_at",
                (originator, submission))
            return [_row(r) for r in await cur.fetchall()]

    async def unjudged(self, limit: int = 100) -> list[ReportRow]:
        """Reports this node holds but has not judged yet, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM payer_reports WHERE attestation_status = 0 "
                "ORDER BY created_at DESC LIMIT %s", (limit,))
            return [_row(r) for r in await cur.fetchall()]

    async def last_end(self, originator: int) -> int:
        """End of ``originator``'s last report that is not rejected (0 when none)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce(max(end_sequence_id), 0) FROM payer_reports "
                "WHERE originator_node_id = %s AND submission_status <> 3", (originator,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0
