"""Corruptions of a live testnet's real state, each a context manager that puts it back.

Databases are changed with plain SQL, the chain through anvil, the proxy through its API, the
containers through the engine; the restore runs even when the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import psycopg
from web3 import Web3

from refnode.envelopes import Signer, sign_originator_envelope, sign_payer_envelope
from refnode.proto import refnode_pb2 as pb
from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses, Rates
from shakedown.keys import admin_account, gateway, node_signer, payer
from shakedown.toxiproxy import ToxiproxyClient
from tests.deploy.testnets import Net


def chain_of(net: Net) -> Chain:
    record = net.record()
    w3 = Web3(Web3.HTTPProvider(record["chain"]["rpc"], request_kwargs={"timeout": 10}))
    return Chain(w3, ContractAddresses.from_dict(record["contracts"]), admin_account())


def dsn(net: Net, node_id: int) -> str:
    return next(n["dsn"] for n in net.record()["nodes"] if n["node_id"] == node_id)


def sql(net: Net, node_id: int, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on a node's database (autocommit); rows when it returns any."""
    with psycopg.connect(dsn(net, node_id), autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def blob(net: Net, node_id: int, originator: int, sequence: int) -> bytes:
    rows = sql(net, node_id, "SELECT originator_envelope FROM gateway_envelopes_blob WHERE "
               "originator_node_id = %s AND originator_sequence_id = %s", (originator, sequence))
    return bytes(rows[0][0])


def set_blob(net: Net, node_id: int, originator: int, sequence: int, data: bytes) -> None:
    sql(net, node_id, "UPDATE gateway_envelopes_blob SET originator_envelope = %s WHERE "
        "originator_node_id = %s AND originator_sequence_id = %s", (data, originator, sequence))


NODES = (100, 200, 300)


# -- chain ----------------------------------------------------------------------------------

@contextmanager
def replaced_code(net: Net, field: str, with_field: str) -> Iterator[None]:
    """The contract at ``field``'s address runs ``with_field``'s code (anvil_setCode)."""
    chain = chain_of(net)
    address = getattr(chain.addresses, field)
    original = chain.w3.eth.get_code(address)
    other = chain.w3.eth.get_code(getattr(chain.addresses, with_field))
    chain.w3.provider.make_request("anvil_setCode", [address, "0x" + bytes(other).hex()])
    try:
        yield
    finally:
        chain.w3.provider.make_request("anvil_setCode", [address, "0x" + bytes(original).hex()])


@contextmanager
def moved_node(net: Net, node_id: int, address: str) -> Iterator[None]:
    """The node is registered at another address (NodeRegistry.setHttpAddress)."""
    chain = chain_of(net)
    before = chain.get_node(node_id).http_address
    chain.set_http_address(node_id, address)
    try:
        yield
    finally:
        chain.set_http_address(node_id, before)


@contextmanager
def removed_from_network(net: Net, node_id: int) -> Iterator[None]:
    chain = chain_of(net)
    chain.remove_from_network(node_id)
    try:
        yield
    finally:
        chain.add_to_network(node_id)


@contextmanager
def rates_from(net: Net, rates: Rates) -> Iterator[None]:
    """New rates in the RateRegistry (anvil snapshot first; reverted afterwards)."""
    chain = chain_of(net)
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        chain.add_rates(rates)
        yield
    finally:
        reverted = chain.w3.provider.make_request("evm_revert", [snapshot])
        assert reverted.get("result") is True, f"evm_revert failed: {reverted}"


# -- databases ------------------------------------------------------------------------------

@contextmanager
def node_info_key(net: Net, node_id: int, key: bytes) -> Iterator[None]:
    (before,) = sql(net, node_id, "SELECT public_key FROM node_info")
    sql(net, node_id, "UPDATE node_info SET public_key = %s", (key,))
    try:
        yield
    finally:
        sql(net, node_id, "UPDATE node_info SET public_key = %s", (bytes(before[0]),))


@contextmanager
def forged_clock(net: Net, node_id: int, originator: int, delta: int) -> Iterator[None]:
    """Move one vector clock entry by ``delta``."""
    statement = ("UPDATE gateway_envelopes_latest SET originator_sequence_id = "
                 "originator_sequence_id + %s WHERE originator_node_id = %s")
    sql(net, node_id, statement, (delta, originator))
    try:
        yield
    finally:
        sql(net, node_id, statement, (-delta, originator))


def _key_of(address: str) -> bytes:
    for account in (*(payer(i) for i in range(2)), gateway(0)):
        if account.address.lower() == address.lower():
            return bytes(account.key)
    raise AssertionError(f"no known key for payer {address}")


def equivocated(original: bytes, payer_address: str, originator_index: int) -> bytes:
    """Another valid envelope for the same sequence: same payer, size, time and fee, other
    payload; re-signed by the payer and by the originator's own key."""
    env = pb.OriginatorEnvelope.FromString(original)
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    payer_env = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
    client = pb.ClientEnvelope.FromString(payer_env.unsigned_client_envelope)
    client.payload = bytes(b ^ 0xFF for b in client.payload)
    signed_payer = sign_payer_envelope(Signer(_key_of(payer_address)), client.SerializeToString(),
                                       payer_env.target_originator,
                                       payer_env.message_retention_days)
    unsigned.payer_envelope_bytes = signed_payer.SerializeToString(deterministic=True)
    signer = Signer(bytes(node_signer(originator_index).key))
    return sign_originator_envelope(signer, unsigned).SerializeToString()


@contextmanager
def other_bytes(net: Net, node_id: int, originator: int, sequence: int) -> Iterator[None]:
    """One node holds another validly signed envelope under the same key (equivocation)."""
    original = blob(net, node_id, originator, sequence)
    ((address,),) = sql(net, node_id, "SELECT p.address FROM gateway_envelopes_meta m JOIN "
                        "payers p ON p.id = m.payer_id WHERE m.originator_node_id = %s AND "
                        "m.originator_sequence_id = %s", (originator, sequence))
    set_blob(net, node_id, originator, sequence,
             equivocated(original, address, originator // 100 - 1))
    try:
        yield
    finally:
        set_blob(net, node_id, originator, sequence, original)


@contextmanager
def tampered_signature(net: Net, originator: int, sequence: int) -> Iterator[None]:
    """One byte of the originator signature's r flipped, on every node alike."""
    originals = {n: blob(net, n, originator, sequence) for n in NODES}
    for n, data in originals.items():
        broken = bytearray(data)
        broken[-60] ^= 0x01  # the signature is the envelope's last field: 65 bytes, r first
        set_blob(net, n, originator, sequence, bytes(broken))
    try:
        yield
    finally:
        for n, data in originals.items():
            set_blob(net, n, originator, sequence, data)


@contextmanager
def other_payer(net: Net, node_id: int, originator: int, sequence: int) -> Iterator[str]:
    """The stored payer of one envelope points at another payer row; yields its address."""
    key = (originator, sequence)
    ((before,),) = sql(net, node_id, "SELECT payer_id FROM gateway_envelopes_meta WHERE "
                       "originator_node_id = %s AND originator_sequence_id = %s", key)
    ((other, address),) = sql(net, node_id, "SELECT id, address FROM payers WHERE id <> %s "
                              "ORDER BY id LIMIT 1", (before,))
    statement = ("UPDATE gateway_envelopes_meta SET payer_id = %s WHERE originator_node_id = %s "
                 "AND originator_sequence_id = %s")
    sql(net, node_id, statement, (other, *key))
    try:
        yield address
    finally:
        sql(net, node_id, statement, (before, *key))


@contextmanager
def altered_spend(net: Net, node_id: int, delta: int) -> Iterator[tuple[int, int]]:
    """One unsettled_usage row's spend moved by ``delta``; yields its (originator, minute)."""
    ((payer_id, originator, minute),) = sql(
        net, node_id, "SELECT payer_id, originator_id, minutes_since_epoch FROM unsettled_usage "
        "ORDER BY 1, 2, 3 LIMIT 1")
    statement = ("UPDATE unsettled_usage SET spend_picodollars = spend_picodollars + %s WHERE "
                 "payer_id = %s AND originator_id = %s AND minutes_since_epoch = %s")
    sql(net, node_id, statement, (delta, payer_id, originator, minute))
    try:
        yield originator, minute
    finally:
        sql(net, node_id, statement, (-delta, payer_id, originator, minute))


def fee_and_minute(data: bytes) -> tuple[int, int]:
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(
        pb.OriginatorEnvelope.FromString(data).unsigned_originator_envelope)
    fee = unsigned.base_fee_picodollars + unsigned.congestion_fee_picodollars
    return fee, unsigned.originator_ns // 60_000_000_000


@contextmanager
def skipped_sequence(net: Net, originator: int) -> Iterator[int]:
    """One envelope (not the last of its minute) gone from every node, with its usage, as if
    the originator had skipped its sequence id; yields the sequence id."""
    usage_last = {r[0] for r in sql(net, NODES[0], "SELECT last_sequence_id FROM unsettled_usage "
                                    "WHERE originator_id = %s", (originator,))}
    sequence = next(s for s in range(2, 50) if s not in usage_last and s + 1 not in usage_last)
    saved = {}
    for n in NODES:
        data = blob(net, n, originator, sequence)
        ((meta,),) = sql(net, n, "SELECT row_to_json(m)::text FROM gateway_envelopes_meta m "
                         "WHERE originator_node_id = %s AND originator_sequence_id = %s",
                         (originator, sequence))
        saved[n] = (data, meta)
    for n, (data, _) in saved.items():
        fee, minute = fee_and_minute(data)
        sql(net, n, "UPDATE unsettled_usage u SET spend_picodollars = spend_picodollars - %s, "
            "message_count = message_count - 1 FROM gateway_envelopes_meta m WHERE "
            "m.originator_node_id = %s AND m.originator_sequence_id = %s AND u.payer_id = "
            "m.payer_id AND u.originator_id = %s AND u.minutes_since_epoch = %s",
            (fee, originator, sequence, originator, minute))
        for table in ("gateway_envelopes_blob", "gateway_envelopes_meta"):
            sql(net, n, f"DELETE FROM {table} WHERE originator_node_id = %s AND "
                "originator_sequence_id = %s", (originator, sequence))
    try:
        yield sequence
    finally:
        for n, (data, meta) in saved.items():
            fee, minute = fee_and_minute(data)
            sql(net, n, "INSERT INTO gateway_envelopes_meta SELECT * FROM "
                "json_populate_record(NULL::gateway_envelopes_meta, %s)", (meta,))
            sql(net, n, "INSERT INTO gateway_envelopes_blob VALUES (%s, %s, %s)",
                (originator, sequence, data))
            sql(net, n, "UPDATE unsettled_usage u SET spend_picodollars = spend_picodollars + "
                "%s, message_count = message_count + 1 FROM gateway_envelopes_meta m WHERE "
                "m.originator_node_id = %s AND m.originator_sequence_id = %s AND u.payer_id = "
                "m.payer_id AND u.originator_id = %s AND u.minutes_since_epoch = %s",
                (fee, originator, sequence, originator, minute))


@contextmanager
def duplicated_meta_row(net: Net, node_id: int, originator: int, sequence: int
                        ) -> Iterator[None]:
    """The meta table's primary key dropped and one row stored twice."""
    key = (originator, sequence)
    sql(net, node_id, "ALTER TABLE gateway_envelopes_meta DROP CONSTRAINT "
        "gateway_envelopes_meta_pkey")
    try:
        sql(net, node_id, "INSERT INTO gateway_envelopes_meta SELECT * FROM "
            "gateway_envelopes_meta WHERE originator_node_id = %s AND originator_sequence_id = %s",
            key)
        yield
    finally:
        sql(net, node_id, "DELETE FROM gateway_envelopes_meta WHERE ctid IN (SELECT ctid FROM "
            "gateway_envelopes_meta WHERE originator_node_id = %s AND originator_sequence_id = %s "
            "OFFSET 1)", key)
        sql(net, node_id, "ALTER TABLE gateway_envelopes_meta ADD PRIMARY KEY "
            "(originator_node_id, originator_sequence_id)")


# -- faults ---------------------------------------------------------------------------------

@contextmanager
def toxic_left(net: Net, proxy: str, name: str) -> Iterator[None]:
    api = ToxiproxyClient(net.record()["proxy"]["api"])
    api.add_toxic(proxy, "latency", attributes={"latency": 1}, name=name)
    try:
        yield
    finally:
        api.remove_toxic(proxy, name, missing_ok=True)


@contextmanager
def paused(client: docker.DockerClient, container: str) -> Iterator[None]:
    found = client.containers.get(container)
    found.pause()
    try:
        yield
    finally:
        found.unpause()
