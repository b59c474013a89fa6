"""Helpers for the payer-report tests: node settings, direct reads of the report tables, and
the fees a node's stored envelopes add up to."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psycopg

from refnode.envelopes import recover
from refnode.report_store import parse_envelope
from shakedown.procs.cluster import ProcessCluster
from shakedown.waiting import wait_for

INTERVAL_S = 1.0  # report interval in these tests: a lifecycle in seconds
SETTLED, REJECTED = 2, 3


def report_env(cluster: ProcessCluster, **switches: str) -> dict[str, str]:
    """Environment that turns payer reports on, plus ``REFNODE_<NAME>`` switches."""
    env = {"REFNODE_PAYER_REPORT_MANAGER": cluster.chain.addresses.payer_report_manager,
           "REFNODE_REPORT_INTERVAL_S": str(INTERVAL_S)}
    env.update({f"REFNODE_{k.upper()}": v for k, v in switches.items()})
    return env


@dataclass(frozen=True)
class Row:
    """One payer_reports row."""

    id: bytes
    originator: int
    start: int
    end: int
    end_minute: int
    payers_hash: bytes
    node_ids: tuple[int, ...]
    submission: int
    attestation: int
    index: int | None


def read_reports(conn: psycopg.Connection) -> list[Row]:
    rows = conn.execute(
        "SELECT id, originator_node_id, start_sequence_id, end_sequence_id, "
        "end_minute_since_epoch, payers_merkle_root, active_node_ids, submission_status, "
        "attestation_status, submitted_report_index FROM payer_reports ORDER BY 2, 3, created_at"
    ).fetchall()
    return [Row(bytes(i), o, s, e, m, bytes(h), tuple(n), sub, att, x)
            for i, o, s, e, m, h, n, sub, att, x in rows]


def read_attestations(conn: psycopg.Connection) -> dict[bytes, dict[int, bytes]]:
    out: dict[bytes, dict[int, bytes]] = defaultdict(dict)
    for rid, node, sig in conn.execute(
            "SELECT payer_report_id, node_id, signature FROM payer_report_attestations"):
        out[bytes(rid)][int(node)] = bytes(sig)
    return out


def reports(cluster: ProcessCluster, node_id: int) -> list[Row]:
    with cluster.db(node_id) as conn:
        return read_reports(conn)


def settled_through(rows: list[Row]) -> dict[int, int]:
    """originator -> end of the contiguous run of settled reports from sequence 0."""
    reach: dict[int, int] = {}
    for row in sorted((r for r in rows if r.submission == SETTLED),
                      key=lambda r: (r.originator, r.start)):
        if row.start == reach.get(row.originator, 0):
            reach[row.originator] = row.end
    return reach


def wait_settled(cluster: ProcessCluster, expected: dict[int, int], nodes: list[int],
                 timeout: float = 90) -> None:
    """Every node in ``nodes`` records originator o's envelopes settled through expected[o]."""
    def probe() -> dict[int, dict[int, int]]:
        return {n: settled_through(reports(cluster, n)) for n in nodes}

    wait_for(probe, lambda seen: all(all(r.get(o, 0) >= end for o, end in expected.items())
                                     for r in seen.values()),
             timeout=timeout, interval=0.25, what=f"reports settled through {expected}")


def envelope_fees(conn: psycopg.Connection, originator: int, start: int,
                  end: int) -> dict[str, int]:
    """payer -> fees of ``originator``'s stored envelopes in (start, end]."""
    fees: dict[str, int] = defaultdict(int)
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT m.originator_sequence_id, p.address, b.originator_envelope "
            "FROM gateway_envelopes_meta m JOIN gateway_envelopes_blob b USING "
            "(originator_node_id, originator_sequence_id) JOIN payers p ON p.id = m.payer_id "
            "WHERE m.originator_node_id = %s AND m.originator_sequence_id > %s "
            "AND m.originator_sequence_id <= %s", (originator, start, end))
        for seq, payer, blob in cur.fetchall():
            env = parse_envelope(int(seq), payer, bytes(blob))
            fees[env.payer] += env.base_fee + env.congestion_fee
    return dict(fees)


def signer_of(digest: bytes, signature: bytes) -> str:
    return recover(digest, signature)
