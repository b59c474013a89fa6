"""The verify checks' pure parts, on real envelopes signed as refnode signs them; no testnet."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from refnode.envelopes import Signer, client_envelope, sign_originator_envelope, sign_payer_envelope
from refnode.proto import refnode_pb2 as pb
from shakedown.chain.contracts import artifact
from shakedown.chain.records import Rates
from shakedown.errors import ConfigError
from shakedown.observe import IndexRow, OriginatorDigest, index_digest
from shakedown.verify.envelopes import EnvelopeCache, Verdict, judge
from shakedown.verify.membership import code_matches, immutable_mask, key_address
from shakedown.verify.opened import Opener, open_all, open_envelope
from shakedown.verify.replication import ReplicaState, convergence_problems
from shakedown.verify.signatures import envelope_problems
from shakedown.verify.target import resolve_target
from shakedown.verify.usage import fee_problem

NODE, PAYER = Signer(os.urandom(32)), Signer(os.urandom(32))
RATES = Rates(message_fee=1000, storage_fee=1)


def envelope(sequence: int, *, node: Signer = NODE, originator: int = 100,
             rates: Rates = RATES, at_ns: int | None = None) -> bytes:
    client = client_envelope(b"topic", os.urandom(64))
    signed = sign_payer_envelope(PAYER, client, originator)
    unsigned = pb.UnsignedOriginatorEnvelope(
        originator_node_id=originator, originator_sequence_id=sequence,
        originator_ns=at_ns or time.time_ns(),
        payer_envelope_bytes=signed.SerializeToString(deterministic=True),
        base_fee_picodollars=rates.base_fee(len(client), 30),
        congestion_fee_picodollars=rates.congestion_fee)
    return sign_originator_envelope(node, unsigned).SerializeToString()


def row(sequence: int, payer: str | None = PAYER.address, originator: int = 100) -> IndexRow:
    return IndexRow(originator, sequence, b"", payer)


def test_a_sound_envelope_has_no_problem() -> None:
    env = open_envelope(envelope(7))
    assert (env.signer, env.payer, env.error) == (NODE.address, PAYER.address, "")
    assert envelope_problems(row(7), env, {100: NODE.address}) == []


def test_each_fault_of_a_stored_envelope_is_named() -> None:
    signers = {100: NODE.address}
    tampered = bytearray(envelope(7))
    tampered[-60] ^= 1
    assert "originator signature" in " ".join(
        envelope_problems(row(7), open_envelope(bytes(tampered)), signers))
    other = Signer(os.urandom(32))
    assert envelope_problems(row(7), open_envelope(envelope(7, node=other)), signers) == [
        f"envelope 100:7: originator signature recovers to {other.address}; the registered "
        f"signer of node 100 is {NODE.address}"]
    assert envelope_problems(row(8), open_envelope(envelope(7)), signers) == [
        "envelope 100:8 holds the envelope of 100:7"]
    assert envelope_problems(row(7, payer="0xabc"), open_envelope(envelope(7)), signers) == [
        f"envelope 100:7: stored payer 0xabc; the payer signature recovers to {PAYER.address}"]
    assert envelope_problems(row(7, originator=300), open_envelope(envelope(7, originator=300)),
                             signers) == ["envelope 300:7: originator 300 is not registered"]
    assert "bytes do not parse" in envelope_problems(row(7), open_envelope(b"\xff\xff"), signers)[0]


def test_opening_in_a_pool_equals_opening_inline() -> None:
    blobs = [envelope(s) for s in range(1, 2101)]
    pooled = open_all(blobs, workers=2)
    assert pooled == open_all(blobs[:2100], workers=1)
    assert len(pooled) == 2100


def test_envelopes_handed_over_while_reading_are_opened_on_the_workers() -> None:
    """As the scan does: several reading threads hand envelopes over in small parts, and
    the workers (forked up front) open each once, while the threads go on."""
    blobs = [envelope(s) for s in range(1, 3001)] + [b"\xff\xff"]
    parts = [blobs[i:i + 250] for i in range(0, len(blobs), 250)]
    with Opener(workers=2) as opener:
        assert len(opener.pids) == 2  # forked before any reading thread started
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(opener.submit, parts))
        pooled = opener.results()
    assert pooled == open_all(blobs, workers=1)
    assert len(pooled) == 3001


def test_price_is_the_registry_rates_at_the_envelope_time_with_grace() -> None:
    now = time.time()
    later = Rates(message_fee=5000, storage_fee=1, start_time=int(now) - 5)
    schedule = [RATES, later]
    old_price = open_envelope(envelope(1, at_ns=int(now * 1e9)))
    assert fee_problem(old_price, schedule, grace_s=10) is None  # read before the change
    problem = fee_problem(old_price, schedule, grace_s=1)
    assert problem is not None
    assert "prices it 7190 + 0 (73-byte client envelope, 30 days)" in problem


def test_a_verdict_sums_usage_per_payer_originator_and_minute() -> None:
    blobs = [envelope(s) for s in (1, 2, 3)]
    opened = open_all(blobs)
    rows = [IndexRow(100, s, digest, PAYER.address) for s, digest in zip((1, 2, 3), opened,
                                                                          strict=True)]
    verdict = judge(rows, opened, {100: NODE.address}, [RATES], 10)
    fees = sum(e.fee for e in opened.values())
    minutes = {e.minute for e in opened.values()}
    assert verdict.signature_problems == () and verdict.pricing_problems == ()
    assert sum(u[3] for u in verdict.usage) == fees and {u[2] for u in verdict.usage} == minutes
    assert index_digest(rows) != index_digest(rows[:2])


def test_convergence_names_the_odd_node_by_the_majority() -> None:
    same = OriginatorDigest(10, 10, "a")
    states = {
        "node-100": ReplicaState({100: 10}, {100: same}),
        "node-200": ReplicaState({100: 12}, {100: OriginatorDigest(12, 12, "b")}),
        "node-300": ReplicaState({100: 10}, {100: same}),
    }
    assert convergence_problems(states, {100}) == [
        "node-200: originator 100: vector clock at 12, node-100 and node-300 at 10",
        "node-200: originator 100: envelope set differs from node-100 and node-300 "
        "(12 envelopes up to 12 vs 10 up to 10)"]
    states["node-200"] = ReplicaState({100: 12}, {100: same})
    assert convergence_problems(states, {100})[0] == (
        "node-200: originator 100: vector clock at 12 but the highest stored sequence is 10")


def test_contract_code_matches_with_immutables_filled_only() -> None:
    compiled = bytes.fromhex(artifact("PayerRegistry").deployed_bytecode.removeprefix("0x"))
    masked = sorted(immutable_mask(compiled))
    assert masked, "PayerRegistry has immutables"
    filled = bytearray(compiled)
    filled[masked[-1]] = 0x42
    assert code_matches(bytes(filled), compiled)
    other = bytearray(compiled)
    other[1] ^= 0xFF
    assert not code_matches(bytes(other), compiled)
    assert not code_matches(compiled[:-1], compiled)


def test_node_info_key_is_an_address_or_a_public_key() -> None:
    import coincurve

    key = coincurve.PrivateKey()
    signer = Signer(key.secret)
    assert key_address(bytes.fromhex(signer.address[2:])).lower() == signer.address.lower()
    assert key_address(key.public_key.format()) == signer.address
    assert key_address(b"\x01\x02").startswith("<not a key")


def test_kept_verdicts_survive_a_run_and_a_damaged_file_is_ignored(tmp_path: Path) -> None:
    cache = EnvelopeCache(tmp_path, "net")
    verdict = Verdict(3, ("p",), (), (("0xa", 100, 1, 10, 3, 3),))
    cache.save_verdicts("ctx", {"d": verdict})
    assert cache.load_verdicts("ctx") == {"d": verdict}
    assert cache.load_verdicts("other rates") == {}
    cache.verdicts_path.write_bytes(b"not marshal")
    assert cache.load_verdicts("ctx") == {}


def test_target_needs_a_record_or_contracts(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.py"
    record = tmp_path / "none.json"
    inventory.write_text(f"hosts = [('@local', {{'testnet': 'sdv-x', 'record_path': "
                         f"{str(record)!r}}})]\n")
    with pytest.raises(ConfigError, match=r"no deployment record at .*none\.json"):
        resolve_target(inventory)
    addresses = {k: "0x" + f"{i:040x}" for i, k in enumerate(
        ["node_registry", "rate_registry", "fee_token", "payer_registry",
         "payer_report_manager", "distribution_manager"], start=1)}
    inventory.write_text(f"hosts = [('@local', {{'testnet': 'sdv-x', 'record_path': "
                         f"{str(record)!r}, 'port_base': 41000, 'contracts': "
                         f"{json.dumps(addresses)}}})]\n")
    target = resolve_target(inventory)
    assert target.chain_rpc == "http://127.0.0.1:41000"
    assert target.node("node-200").dsn.endswith("@127.0.0.1:41002/node_200")
    assert target.node("node-200").http_address == "proxy:10200"


def test_kept_files_are_bounded_to_the_recent_testnets(tmp_path: Path) -> None:
    for k in range(40):
        old = EnvelopeCache(tmp_path, f"net-{k}")
        old.verdicts_path.write_bytes(b"x")
        old.opened_path.write_bytes(b"x")
        os.utime(old.verdicts_path, (time.time() - 100 + k,) * 2)  # net-0 the oldest
    EnvelopeCache(tmp_path, "current").save_verdicts("ctx", {})
    kept = sorted(p.stem for p in tmp_path.glob("*.verdicts"))
    assert "current" in kept and len(kept) == EnvelopeCache.KEEP + 1  # 32 others, newest
    assert "net-0" not in kept and not (tmp_path / "net-0.opened").exists()
