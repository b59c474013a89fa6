"""Every payer report a node holds agrees with the envelopes it covers, as that node stores them.

A report names an originator's range (start, end], the minute of its last envelope and a
hash of what each payer owes for the range. Verify recomputes both from the node's own copy
of the envelopes (each envelope's base plus congestion fee, per payer), the way an honest
attester does; a report that disagrees is a lie by its originator, whatever became of it
(rejected by the peers, or on the chain). Reports over a range the node does not fully hold
are skipped: there is nothing to compare with.

    problems = check_reports_agree(conn, "node-100")
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psycopg

from refnode.report_spec import payers_hash, sorted_payers
from refnode.report_store import parse_envelope
from shakedown.observe import read_blob_table

SHOW = 3
ATTESTATION = {0: "not judged by this node", 1: "attested by this node",
               2: "rejected by this node"}
SUBMISSION = {1: "submitted on-chain", 2: "settled on-chain", 3: "never submitted"}


@dataclass(frozen=True)
class HeldReport:
    originator: int
    start: int
    end: int
    end_minute: int
    payers_hash: bytes
    submission: int
    attestation: int

    @property
    def status(self) -> str:
        return SUBMISSION.get(self.submission) or ATTESTATION.get(self.attestation, "?")


@dataclass(frozen=True)
class Priced:
    """What one stored envelope costs and when it was made."""

    payer: str
    fee: int
    minute: int


def read_held_reports(conn: psycopg.Connection) -> list[HeldReport]:
    rows = conn.execute("SELECT originator_node_id, start_sequence_id, end_sequence_id, "
                        "end_minute_since_epoch, payers_merkle_root, submission_status, "
                        "attestation_status FROM payer_reports "
                        "ORDER BY originator_node_id, start_sequence_id, end_sequence_id"
                        ).fetchall()
    return [HeldReport(int(o), int(s), int(e), int(m), bytes(h), int(sub), int(att))
            for o, s, e, m, h, sub, att in rows]


def read_priced(conn: psycopg.Connection, originator: int, up_to: int) -> dict[int, Priced]:
    """Sequence id -> (payer, fee, minute) of ``originator``'s stored envelopes up to ``up_to``."""
    blob_table = read_blob_table(conn)  # xmtpd before 00023 names it gateway_envelope_blobs
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT m.originator_sequence_id, p.address, b.originator_envelope "
                    f"FROM gateway_envelopes_meta m JOIN {blob_table} b "
                    "USING (originator_node_id, originator_sequence_id) "
                    "LEFT JOIN payers p ON p.id = m.payer_id "
                    "WHERE m.originator_node_id = %s AND m.originator_sequence_id <= %s",
                    (originator, up_to))
        found = {}
        for seq, payer, blob in cur:
            env = parse_envelope(int(seq), payer, bytes(blob))
            found[int(seq)] = Priced(env.payer, env.base_fee + env.congestion_fee,
                                     env.originator_ns // 60_000_000_000)
        return found


def disagreement(report: HeldReport, priced: dict[int, Priced]) -> str | None:
    """Why ``report`` does not match the envelopes (None: it does, or they are not all held)."""
    seqs = range(report.start + 1, report.end + 1)
    if report.end <= report.start or any(s not in priced for s in seqs):
        return None
    owed: dict[str, int] = defaultdict(int)
    for s in seqs:
        owed[priced[s].payer] += priced[s].fee
    payers, fees = sorted_payers(owed)
    if payers_hash(payers, fees) != report.payers_hash:
        return (f"its payers hash is not that of the envelopes' fees ({len(payers)} payers, "
                f"{sum(fees)} picodollars)")
    if priced[report.end].minute != report.end_minute:
        return (f"it ends in minute {report.end_minute}, envelope {report.end} is of minute "
                f"{priced[report.end].minute}")
    return None


def check_reports_agree(conn: psycopg.Connection, node: str) -> list[str]:
    """One line per originator whose reports held here disagree with the stored envelopes."""
    reports = read_held_reports(conn)
    by_origin: dict[int, list[HeldReport]] = defaultdict(list)
    for r in reports:
        by_origin[r.originator].append(r)
    problems = []
    for origin, held in sorted(by_origin.items()):
        priced = read_priced(conn, origin, max(r.end for r in held))
        bad = [(r, why) for r in held if (why := disagreement(r, priced))]
        if bad:
            shown = "; ".join(f"({r.start}, {r.end}] ({r.status}): {why}"
                              for r, why in bad[:SHOW])
            more = f" (and {len(bad) - SHOW} more)" if len(bad) > SHOW else ""
            problems.append(f"{node} holds {len(bad)} payer report(s) of node {origin} that "
                            f"disagree with its envelopes: {shown}{more}")
    return problems
