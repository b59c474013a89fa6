"""Envelope signing and verification: pure logic, no services."""

from __future__ import annotations

import pytest

from refnode import envelopes as e
from refnode.proto import refnode_pb2 as pb
from shakedown.keys import node_signer, payer

PAYER = e.Signer(bytes(payer(0).key))
NODE = e.Signer(bytes(node_signer(0).key))
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def signed_payer_envelope(target: int = 100) -> pb.PayerEnvelope:
    return e.sign_payer_envelope(PAYER, e.client_envelope(b"t/1", b"hello"), target)


def test_signer_address_matches_eth_account() -> None:
    assert PAYER.address == payer(0).address


def test_payer_envelope_recovers_its_payer() -> None:
    opened = e.open_payer_envelope(signed_payer_envelope())
    assert (opened.payer, opened.topic) == (PAYER.address, b"t/1")


def test_changed_target_changes_the_recovered_payer() -> None:
    env = signed_payer_envelope(100)
    env.target_originator = 200
    assert e.open_payer_envelope(env).payer != PAYER.address


@pytest.mark.parametrize("mangle", [
    lambda sig: b"\x00" * 65,
    lambda sig: sig[:64],
    lambda sig: sig[:64] + b"\x05",
    lambda sig: sig[:32] + (N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    + bytes([sig[64] ^ 1]),
], ids=["zero", "truncated", "bad-v", "high-s"])
def test_malformed_payer_signatures_are_rejected(mangle) -> None:
    env = signed_payer_envelope()
    env.payer_signature = mangle(env.payer_signature)
    with pytest.raises(e.InvalidEnvelope):
        e.open_payer_envelope(env)


def test_garbage_client_envelope_is_rejected() -> None:
    env = e.sign_payer_envelope(PAYER, b"\xff\xff\xff", 100)
    with pytest.raises(e.InvalidEnvelope):
        e.open_payer_envelope(env)


def test_payer_signature_cannot_pass_as_originator_signature() -> None:
    body = b"same bytes"
    sig = PAYER.sign(e.payer_digest(body, 100, 30))
    assert e.recover(e.originator_digest(body), sig) != PAYER.address


def test_originator_envelope_roundtrip_and_tamper() -> None:
    unsigned = pb.UnsignedOriginatorEnvelope(
        originator_node_id=100, originator_sequence_id=7, originator_ns=1,
        payer_envelope_bytes=signed_payer_envelope().SerializeToString(),
        base_fee_picodollars=1000)
    env = e.sign_originator_envelope(NODE, unsigned)
    opened = e.open_originator_envelope(env)
    assert (opened.signer, opened.node_id, opened.sequence_id, opened.fee) == (
        NODE.address, 100, 7, 1000)
    assert opened.payer.payer == PAYER.address
    unsigned.originator_sequence_id = 8
    env.unsigned_originator_envelope = unsigned.SerializeToString()
    assert e.open_originator_envelope(env).signer != NODE.address
