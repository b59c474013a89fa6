"""Databases laid out like xmtpd's, filled from a real testnet's node databases.

Our own DDL, written from the schema facts of xmtpd's migrations (up to 00023):

- ``gateway_envelopes_meta`` and the blob table are LIST-partitioned by originator, each
  originator's partition RANGE-partitioned by sequence id in bands of 1,000,000; there is no
  default partition, so a partition exists for every originator stored;
- the blob table is ``gateway_envelope_blobs`` before migration 00023, ``gateway_envelopes_blob``
  from it on; its rows reference the meta row (ON DELETE CASCADE);
- ``node_info.public_key`` is the signer's 65-byte uncompressed public key;
- ``payer_reports.created_at`` and ``payer_report_attestations.created_at`` are nullable
  ``timestamptz``; attestations do not reference their report; meta's ``gateway_time`` and the
  vector clock's stay ``timestamp``; ``unsettled_usage.payer_id`` references ``payers``.

    dsns = copy_testnet(net, "old", "gateway_envelope_blobs")   # node id -> DSN
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.deploy.testnets import Net

BAND = 1_000_000  # sequence ids per range partition, as xmtpd's partition maker lays them

SCHEMA = """
CREATE TABLE node_info (
    node_id INTEGER NOT NULL,
    public_key BYTEA NOT NULL,
    singleton_id SMALLINT PRIMARY KEY DEFAULT 1,
    CONSTRAINT is_singleton CHECK (singleton_id = 1));
CREATE TABLE payers (id SERIAL PRIMARY KEY, address TEXT NOT NULL UNIQUE);
CREATE TABLE staged_originator_envelopes (
    id BIGSERIAL PRIMARY KEY,
    originator_time TIMESTAMP NOT NULL DEFAULT now(),
    topic BYTEA NOT NULL,
    payer_envelope BYTEA NOT NULL);
CREATE TABLE gateway_envelopes_meta (
    gateway_time TIMESTAMP NOT NULL DEFAULT now(),
    originator_node_id INT NOT NULL,
    originator_sequence_id BIGINT NOT NULL,
    topic BYTEA NOT NULL,
    payer_id INT REFERENCES payers (id),
    expiry BIGINT NOT NULL,
    PRIMARY KEY (originator_node_id, originator_sequence_id)
) PARTITION BY LIST (originator_node_id);
CREATE TABLE {blob} (
    originator_node_id INT NOT NULL,
    originator_sequence_id BIGINT NOT NULL,
    originator_envelope BYTEA NOT NULL,
    PRIMARY KEY (originator_node_id, originator_sequence_id),
    FOREIGN KEY (originator_node_id, originator_sequence_id)
        REFERENCES gateway_envelopes_meta (originator_node_id, originator_sequence_id)
        ON DELETE CASCADE
) PARTITION BY LIST (originator_node_id);
CREATE TABLE gateway_envelopes_latest (
    originator_node_id INT PRIMARY KEY,
    originator_sequence_id BIGINT NOT NULL,
    gateway_time TIMESTAMP NOT NULL);
CREATE TABLE unsettled_usage (
    payer_id INTEGER NOT NULL REFERENCES payers (id),
    originator_id INTEGER NOT NULL,
    minutes_since_epoch INTEGER NOT NULL,
    spend_picodollars BIGINT NOT NULL,
    last_sequence_id BIGINT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (payer_id, originator_id, minutes_since_epoch));
CREATE TABLE payer_reports (
    id BYTEA PRIMARY KEY,
    originator_node_id INT NOT NULL,
    start_sequence_id BIGINT NOT NULL,
    end_sequence_id BIGINT NOT NULL,
    end_minute_since_epoch INT NOT NULL,
    payers_merkle_root BYTEA NOT NULL,
    active_node_ids INT[] NOT NULL,
    submission_status SMALLINT NOT NULL DEFAULT 0,
    attestation_status SMALLINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ DEFAULT now(),
    submitted_report_index INTEGER NULL);
CREATE TABLE payer_report_attestations (
    payer_report_id BYTEA NOT NULL,
    node_id BIGINT NOT NULL,
    signature BYTEA NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(),
    PRIMARY KEY (payer_report_id, node_id));
"""

# (table, columns) copied from refnode's database, in an order the foreign keys accept; the
# envelope tables' partitions are made first. staged_originator_envelopes stays empty.
COPIED = (
    ("node_info", "node_id, public_key, singleton_id"),
    ("payers", "id, address"),
    ("gateway_envelopes_meta", "gateway_time, originator_node_id, originator_sequence_id, "
                               "topic, payer_id, expiry"),
    ("{blob}", "originator_node_id, originator_sequence_id, originator_envelope"),
    ("gateway_envelopes_latest", "originator_node_id, originator_sequence_id, gateway_time"),
    ("unsettled_usage", "payer_id, originator_id, minutes_since_epoch, spend_picodollars, "
                        "last_sequence_id, message_count"),
    ("payer_reports", "id, originator_node_id, start_sequence_id, end_sequence_id, "
                      "end_minute_since_epoch, payers_merkle_root, active_node_ids, "
                      "submission_status, attestation_status, created_at, "
                      "submitted_report_index"),
    ("payer_report_attestations", "payer_report_id, node_id, signature, created_at"),
)


def partition(table: str, originator: int, band: int) -> str:
    """The name of a range partition, as xmtpd names them: ``<table>_o100_s0_1000000``."""
    return f"{table}_o{originator}_s{band * BAND}_{(band + 1) * BAND}"


def make_partitions(conn: psycopg.Connection, table: str, originator: int, bands: int) -> None:
    """The originator's LIST partition of ``table`` and its first ``bands`` RANGE bands."""
    conn.execute(f"CREATE TABLE {table}_o{originator} PARTITION OF {table} FOR VALUES IN "
                 f"({originator}) PARTITION BY RANGE (originator_sequence_id)")
    for band in range(bands):
        conn.execute(f"CREATE TABLE {partition(table, originator, band)} PARTITION OF "
                     f"{table}_o{originator} FOR VALUES FROM ({band * BAND}) TO "
                     f"({(band + 1) * BAND})")


def copy_database(source: str, target: str, blob: str) -> None:
    """Lay ``target`` out like xmtpd's and copy every row of refnode's ``source`` into it,
    all read in one snapshot of ``source``.

    Rows go through COPY in text form, so refnode's ``timestamp`` values land in xmtpd's
    ``timestamptz`` columns as the session reads them.
    """
    with psycopg.connect(source) as src, psycopg.connect(target, autocommit=True) as dst:
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        dst.execute(SCHEMA.format(blob=blob))
        with src.transaction():
            highest = src.execute("SELECT originator_node_id, max(originator_sequence_id) "
                                  "FROM gateway_envelopes_meta GROUP BY 1").fetchall()
            for originator, top in highest:
                for table in ("gateway_envelopes_meta", blob):
                    make_partitions(dst, table, int(originator), int(top) // BAND + 1)
            for table, columns in COPIED:
                read = "gateway_envelopes_blob" if table == "{blob}" else table
                with src.cursor().copy(f"COPY (SELECT {columns} FROM {read}) TO STDOUT") as out, \
                        dst.cursor().copy(f"COPY {table.format(blob=blob)} ({columns}) "
                                          "FROM STDIN") as into:
                    for chunk in out:
                        into.write(chunk)
        dst.execute("SELECT setval('payers_id_seq', (SELECT max(id) FROM payers))")


def copy_testnet(net: Net, tag: str, blob: str) -> dict[int, str]:
    """An xmtpd-shaped copy of every node's database (``xmtpd_<tag>_<id>``) on the testnet's
    own PostgreSQL server; node id -> its DSN."""
    record = net.record()
    server = record["db"]["dsn"]
    dsns = {}
    with psycopg.connect(server, autocommit=True) as conn:
        for node in record["nodes"]:
            name = f"xmtpd_{tag}_{node['node_id']}"
            conn.execute(f"CREATE DATABASE {name}")
            dsns[int(node["node_id"])] = server.rsplit("/", 1)[0] + f"/{name}"
    for node in record["nodes"]:
        copy_database(node["dsn"], dsns[int(node["node_id"])], blob)
    return dsns


def record_for(net: Net, dsns: dict[int, str]) -> dict[str, Any]:
    """The testnet's record with each node's database replaced by its xmtpd-shaped copy."""
    record = net.record()
    for node in record["nodes"]:
        node["dsn"] = dsns[int(node["node_id"])]
    return record


def sql(dsn: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []
