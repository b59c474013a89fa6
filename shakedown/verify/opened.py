"""One stored envelope opened: both signers recovered and its fee facts parsed, never raising.

What opening yields depends on the bytes alone, so results may be keyed by the sha256 of the
bytes and kept. ``open_all`` spreads many envelopes over every core (about 120 µs each: two
secp256k1 recoveries dominate).

    opened = open_all([blob])      # {sha256(blob): Opened(...)}
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import coincurve
from google.protobuf.message import DecodeError

from refnode.envelopes import SECP256K1_HALF_N, address_of, originator_digest, payer_digest
from refnode.proto import refnode_pb2 as pb

POOL_THRESHOLD = 2000  # fewer envelopes than this are opened in-process
CHUNK = 2000


class Opened(NamedTuple):
    """What the checks need from one envelope's bytes; signer/payer are "" when unrecoverable."""

    originator_node_id: int
    sequence_id: int
    originator_ns: int
    signer: str
    payer: str
    target_originator: int
    size: int            # bytes of the client envelope: the storage fee's basis
    retention_days: int
    base_fee: int
    congestion_fee: int
    error: str = ""      # why a signature did not recover, or why the bytes did not parse

    @property
    def fee(self) -> int:
        return self.base_fee + self.congestion_fee

    @property
    def minute(self) -> int:
        return self.originator_ns // 60_000_000_000


_ADDRESSES: dict[bytes, str] = {}  # compressed public key -> address, per process


def _recover(digest: bytes, signature: bytes) -> str:
    """The address that signed ``digest``; ValueError when the signature is not acceptable."""
    if len(signature) != 65 or signature[64] > 1:
        raise ValueError(f"signature of {len(signature)} bytes, not 65 with v in 0..1")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        raise ValueError("signature is not canonical (high s)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception when nothing recovers
        raise ValueError(f"unrecoverable signature: {e}") from e
    key = public.format()
    address = _ADDRESSES.get(key)
    if address is None:
        address = _ADDRESSES[key] = address_of(public.format(compressed=False))
    return address


def open_envelope(blob: bytes) -> Opened:
    """Parse an originator envelope's three layers and recover both signers, never raising."""
    try:
        env = pb.OriginatorEnvelope.FromString(blob)
        unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
        payer_env = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
    except DecodeError as e:
        return Opened(0, 0, 0, "", "", 0, 0, 0, 0, 0, f"bytes do not parse: {e}")
    errors: list[str] = []
    signer = payer = ""
    try:
        signer = _recover(originator_digest(env.unsigned_originator_envelope),
                          env.originator_signature)
    except ValueError as e:
        errors.append(f"originator signature: {e}")
    try:
        payer = _recover(payer_digest(payer_env.unsigned_client_envelope,
                                      payer_env.target_originator,
                                      payer_env.message_retention_days),
                         payer_env.payer_signature)
    except ValueError as e:
        errors.append(f"payer signature: {e}")
    return Opened(unsigned.originator_node_id, unsigned.originator_sequence_id,
                  unsigned.originator_ns, signer, payer, payer_env.target_originator,
                  len(payer_env.unsigned_client_envelope), payer_env.message_retention_days,
                  unsigned.base_fee_picodollars, unsigned.congestion_fee_picodollars,
                  "; ".join(errors))


def _open_chunk(blobs: list[bytes]) -> list[tuple[bytes, Opened]]:
    return [(hashlib.sha256(b).digest(), open_envelope(b)) for b in blobs]


def open_all(blobs: list[bytes], workers: int | None = None) -> dict[bytes, Opened]:
    """sha256 -> Opened for every blob, on every core when there are many."""
    workers = workers or os.cpu_count() or 1
    if len(blobs) < POOL_THRESHOLD or workers == 1:
        return dict(_open_chunk(blobs))
    chunks = [blobs[i:i + CHUNK] for i in range(0, len(blobs), CHUNK)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        return {k: v for part in pool.map(_open_chunk, chunks) for k, v in part}
