"""node_info holds what xmtpd holds there: the signer's 65-byte uncompressed public key.

Real PostgreSQL; the store is driven directly (no node process), as ``refnode.node`` does at
start: migrate, then claim the database for this node.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from refnode.envelopes import Signer
from refnode.store import Store
from shakedown.keys import node_signer
from shakedown.procs.postgres import PostgresProcess
from shakedown.verify.membership import key_address


def claim(dsn: str, node_id: int, signer: Signer) -> None:
    async def run() -> None:
        store = await Store.open(dsn, max_size=2)
        try:
            await store.migrate()
            await store.ensure_node_info(node_id, signer.public_key)
        finally:
            await store.close()
    asyncio.run(run())


def stored_key(dsn: str) -> tuple[int, bytes]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT node_id, public_key FROM node_info").fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0]), bytes(rows[0][1])


@pytest.fixture
def dsn(postgres: PostgresProcess) -> str:
    return postgres.create_database(f"store_{uuid.uuid4().hex[:8]}")


def test_node_info_holds_the_uncompressed_public_key(dsn: str) -> None:
    signer = Signer(bytes(node_signer(1).key))
    claim(dsn, 200, signer)
    node_id, key = stored_key(dsn)
    assert node_id == 200 and len(key) == 65 and key[0] == 0x04
    assert key_address(key) == signer.address
    claim(dsn, 200, signer)  # a restart finds its own key
    with pytest.raises(RuntimeError, match="database belongs to node 200, not node 300"):
        claim(dsn, 300, Signer(bytes(node_signer(2).key)))
    with pytest.raises(RuntimeError, match="belongs to node 200"):
        claim(dsn, 200, Signer(bytes(node_signer(0).key)))
    assert stored_key(dsn) == (200, signer.public_key)


def test_a_database_holding_the_old_address_form_gets_the_key(dsn: str) -> None:
    signer = Signer(bytes(node_signer(0).key))
    claim(dsn, 100, signer)
    with psycopg.connect(dsn) as conn:  # as refnode wrote it before: the 20-byte address
        conn.execute("UPDATE node_info SET public_key = %s",
                     (bytes.fromhex(signer.address[2:]),))
    claim(dsn, 100, signer)
    assert stored_key(dsn) == (100, signer.public_key)
