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
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
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


class Opener:
    """Opens envelopes in worker processes, one per core, as they are handed over.

    Processes because the work is Python and C in small steps (parse, hash, recover) that
    hold the GIL between them. The workers are forked when the opener is made, so make it
    before any thread starts; ``submit`` may then be called from any thread. With one
    worker, or fewer than POOL_THRESHOLD envelopes in all, envelopes are opened in-process.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[list[tuple[bytes, Opened]]]] = []
        self._held: list[bytes] = []  # waiting for a full chunk (or for results())
        self._lock = threading.Lock()
        if self.workers > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context(method))
            self._pool.submit(os.getpid).result()  # fork every worker now, from this thread

    @property
    def pids(self) -> list[int]:
        """The worker processes (none when envelopes are opened in-process)."""
        return sorted(self._pool._processes) if self._pool is not None else []

    def __enter__(self) -> Opener:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def submit(self, blobs: list[bytes]) -> None:
        """Queue envelopes; full chunks start on a worker at once."""
        with self._lock:
            self._held += blobs
            if self._pool is None:
                return
            while len(self._held) >= CHUNK:
                chunk, self._held = self._held[:CHUNK], self._held[CHUNK:]
                self._futures.append(self._pool.submit(_open_chunk, chunk))

    def results(self) -> dict[bytes, Opened]:
        """sha256 -> Opened for every envelope submitted, once all are opened."""
        with self._lock:
            held, self._held = self._held, []
            futures, self._futures = self._futures, []
        if self._pool is None or (not futures and len(held) < POOL_THRESHOLD):
            found = dict(_open_chunk(held))
        else:
            futures += [self._pool.submit(_open_chunk, held[i:i + CHUNK])
                        for i in range(0, len(held), CHUNK)]
            found = {}
        for future in futures:
            found.update(future.result())
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def open_all(blobs: list[bytes], workers: int | None = None) -> dict[bytes, Opened]:
    """sha256 -> Opened for every blob, on every core when there are many."""
    if len(blobs) < POOL_THRESHOLD or (workers or os.cpu_count() or 1) == 1:
        return dict(_open_chunk(blobs))
    with Opener(workers) as opener:
        opener.submit(blobs)
        return opener.results()
