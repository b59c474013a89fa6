"""Misbehaviour checks: what nodes refused from their peers, with the evidence re-judged here.

A node that refuses a peer's replication stream keeps the envelopes that prove why in
``misbehavior_reports``. Verify reads them straight from each database and opens the evidence
itself: an envelope signed by the offender's registered signer is proof; anything else is
only the node's claim, and said so. A canonical node with proven misbehaviour means the
network trusts a node it should not.

    problems = check_misbehaviour(conn, "node-100", signers, canonical={100, 200, 300})
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psycopg

from refnode.envelopes import InvalidEnvelope, parse_originator_bytes

SHOW = 3  # offences named per offender and kind


@dataclass(frozen=True)
class Refusal:
    """One ``misbehavior_reports`` row."""

    offender: int
    kind: str
    sequence_id: int
    evidence: bytes
    conflicting: bytes | None
    detail: str
    times_seen: int


def read_refusals(conn: psycopg.Connection) -> list[Refusal]:
    """Every refusal a node recorded; none for a database without the table (xmtpd's)."""
    table = conn.execute("SELECT to_regclass('misbehavior_reports')").fetchone()
    if table is None or table[0] is None:
        return []
    rows = conn.execute("SELECT offender_node_id, kind, sequence_id, evidence, conflicting, "
                        "detail, times_seen FROM misbehavior_reports "
                        "ORDER BY offender_node_id, kind, sequence_id").fetchall()
    return [Refusal(int(o), k, int(s), bytes(e), bytes(c) if c is not None else None, d,
                    int(n)) for o, k, s, e, c, d, n in rows]


def signed_by(blob: bytes | None, signer: str | None, sequence_id: int) -> bool:
    """True when ``blob`` is an envelope at ``sequence_id`` signed by ``signer``."""
    if blob is None or signer is None:
        return False
    try:
        env = parse_originator_bytes(blob)
    except InvalidEnvelope:
        return False
    return env.signer.lower() == signer.lower() and env.sequence_id == sequence_id


def proven(refusal: Refusal, signer: str | None) -> bool:
    """The evidence holds: signed by the offender (both envelopes, for an equivocation, and
    different bytes)."""
    if not signed_by(refusal.evidence, signer, refusal.sequence_id):
        return False
    if refusal.kind == "equivocation":
        return (signed_by(refusal.conflicting, signer, refusal.sequence_id)
                and refusal.conflicting != refusal.evidence)
    return True


def describe(refusals: list[Refusal], signer: str | None) -> str:
    """``equivocation at 31 (proven), gap at 33 (proven), stale at 30 (x12, proven)``."""
    parts = []
    by_kind: dict[str, list[Refusal]] = defaultdict(list)
    for r in refusals:
        by_kind[r.kind].append(r)
    for kind, found in sorted(by_kind.items()):
        shown = []
        for r in found[:SHOW]:
            times = f"x{r.times_seen}, " if r.times_seen > 1 else ""
            verdict = "proven" if proven(r, signer) else "unproven"
            shown.append(f"{r.sequence_id} ({times}{verdict})")
        more = f" and {len(found) - SHOW} more" if len(found) > SHOW else ""
        parts.append(f"{kind} at {', '.join(shown)}{more}")
    return "; ".join(parts)


def check_misbehaviour(conn: psycopg.Connection, node: str, signers: dict[int, str],
                       canonical: set[int]) -> list[str]:
    """One line per canonical offender this node refused, naming what it did and whether the
    evidence holds against the offender's registered signer. Offenders no longer canonical
    (removed from the network since) are history, not a problem."""
    by_offender: dict[int, list[Refusal]] = defaultdict(list)
    for r in read_refusals(conn):
        by_offender[r.offender].append(r)
    return [f"{node} refused node {offender}'s replication stream, and node {offender} is "
            f"still canonical: {describe(found, signers.get(offender))}"
            for offender, found in sorted(by_offender.items()) if offender in canonical]
