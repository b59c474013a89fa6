"""Envelope nesting and signatures: client -> payer -> originator.

Signatures are 65-byte recoverable secp256k1 (r || s || v, v in {0, 1}) over keccak digests
that carry a domain prefix, so a payer signature can never pass as an originator one. Signers
are identified by Ethereum address, the way the NodeRegistry records them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import coincurve
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from google.protobuf.message import DecodeError

from refnode.proto import refnode_pb2 as pb

PAYER_DOMAIN = b"\x19refnode payer envelope\n"
ORIGINATOR_DOMAIN = b"\x19refnode originator envelope\n"
DEFAULT_RETENTION_DAYS = 30
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class InvalidEnvelope(ValueError):
    """An envelope that does not parse or whose signature does not hold."""


def payer_digest(unsigned_client_envelope: bytes, target_originator: int,
                 retention_days: int) -> bytes:
    header = struct.pack(">II", target_originator, retention_days)
    return keccak(PAYER_DOMAIN + header + unsigned_client_envelope)


def originator_digest(unsigned_originator_envelope: bytes) -> bytes:
    return keccak(ORIGINATOR_DOMAIN + unsigned_originator_envelope)


class Signer:
    """A secp256k1 key that signs digests; ``address`` is its Ethereum address and
    ``public_key`` the 65-byte uncompressed key (``0x04 || X || Y``)."""

    def __init__(self, private_key: bytes | str):
        if isinstance(private_key, str):
            private_key = bytes.fromhex(private_key.removeprefix("0x"))
        raw = private_key
        self._key = coincurve.PrivateKey(raw)
        self.public_key = self._key.public_key.format(compressed=False)
        self.address = address_of(self.public_key)

    def sign(self, digest: bytes) -> bytes:
        return self._key.sign_recoverable(digest, hasher=None)

    def __repr__(self) -> str:  # never show the key
        return f"Signer({self.address})"


def address_of(uncompressed_public_key: bytes) -> str:
    """Checksummed Ethereum address of a 65-byte uncompressed public key."""
    return _checksum(keccak(uncompressed_public_key[1:])[-20:].hex())


@lru_cache(maxsize=4096)
def _checksum(hex_address: str) -> str:
    return to_checksum_address(hex_address)


def recover(digest: bytes, signature: bytes) -> str:
    """Address that made ``signature`` over ``digest``; InvalidEnvelope if none can be recovered."""
    if len(signature) != 65 or signature[64] > 1:
        raise InvalidEnvelope(f"signature must be 65 bytes with v in 0..1, "
                              f"got {len(signature)} bytes")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        raise InvalidEnvelope("signature is not canonical (high s); sign with low s")
    try:
        public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception for unrecoverable signatures
        raise InvalidEnvelope(f"unrecoverable signature: {e}") from e
    return address_of(public.format(compressed=False))


def client_envelope(topic: bytes, payload: bytes) -> bytes:
    return pb.ClientEnvelope(topic=topic, payload=payload).SerializeToString()


def sign_payer_envelope(signer: Signer, unsigned_client_envelope: bytes, target_originator: int,
                        retention_days: int = DEFAULT_RETENTION_DAYS) -> pb.PayerEnvelope:
    digest = payer_digest(unsigned_client_envelope, target_originator, retention_days)
    return pb.PayerEnvelope(unsigned_client_envelope=unsigned_client_envelope,
                            payer_signature=signer.sign(digest),
                            target_originator=target_originator,
                            message_retention_days=retention_days)


@dataclass(frozen=True)
class PayerEnvelope:
    """A parsed, signature-checked payer envelope."""

    raw: pb.PayerEnvelope
    payer: str
    topic: bytes
    size: int  # bytes of the client envelope, the basis of the storage fee


def open_payer_envelope(env: pb.PayerEnvelope) -> PayerEnvelope:
    """Parse the client envelope inside and recover the payer; InvalidEnvelope on any fault."""
    client = pb.ClientEnvelope()
    try:
        client.ParseFromString(env.unsigned_client_envelope)
    except DecodeError as e:
        raise InvalidEnvelope(f"client envelope does not parse: {e}") from e
    if not client.topic:
        raise InvalidEnvelope("client envelope has no topic")
    digest = payer_digest(env.unsigned_client_envelope, env.target_originator,
                          env.message_retention_days)
    payer = recover(digest, env.payer_signature)
    return PayerEnvelope(raw=env, payer=payer, topic=client.topic,
                         size=len(env.unsigned_client_envelope))


@dataclass(frozen=True)
class OriginatorEnvelope:
    """A parsed, signature-checked originator envelope and the payer envelope inside it."""

    raw: pb.OriginatorEnvelope
    unsigned: pb.UnsignedOriginatorEnvelope
    signer: str
    payer: PayerEnvelope

    @property
    def node_id(self) -> int:
        return self.unsigned.originator_node_id

    @property
    def sequence_id(self) -> int:
        return self.unsigned.originator_sequence_id

    @property
    def fee(self) -> int:
        return self.unsigned.base_fee_picodollars + self.unsigned.congestion_fee_picodollars


def sign_originator_envelope(signer: Signer,
                             unsigned: pb.UnsignedOriginatorEnvelope) -> pb.OriginatorEnvelope:
    body = unsigned.SerializeToString(deterministic=True)
    return pb.OriginatorEnvelope(unsigned_originator_envelope=body,
                                 originator_signature=signer.sign(originator_digest(body)))


def open_originator_envelope(env: pb.OriginatorEnvelope) -> OriginatorEnvelope:
    """Parse both layers and recover both signers; the caller checks who they must be."""
    unsigned = pb.UnsignedOriginatorEnvelope()
    payer = pb.PayerEnvelope()
    try:
        unsigned.ParseFromString(env.unsigned_originator_envelope)
        payer.ParseFromString(unsigned.payer_envelope_bytes)
    except DecodeError as e:
        raise InvalidEnvelope(f"originator envelope does not parse: {e}") from e
    signer = recover(originator_digest(env.unsigned_originator_envelope), env.originator_signature)
    return OriginatorEnvelope(raw=env, unsigned=unsigned, signer=signer,
                              payer=open_payer_envelope(payer))


def parse_originator_bytes(blob: bytes) -> OriginatorEnvelope:
    env = pb.OriginatorEnvelope()
    try:
        env.ParseFromString(blob)
    except DecodeError as e:
        raise InvalidEnvelope(f"stored envelope does not parse: {e}") from e
    return open_originator_envelope(env)
