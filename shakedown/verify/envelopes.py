"""Judge every stored envelope once, however many nodes hold it and however often verify runs.

Each node's envelopes are split in buckets (originator, 10,000 sequence ids); the server
computes a digest per bucket over keys, sha256 of the bytes and stored payers, in the same
snapshot as the node's unsettled usage. A bucket's verdict (signature problems, mispriced
envelopes, the usage its envelopes price to) depends only on that digest and on the chain's
signers and rates, so it is computed once per distinct digest and kept between runs; only a
bucket never judged before has its rows read and its unknown envelopes opened.

    scan = scan_envelopes(conns, signers, rates, grace_s=10, cache=EnvelopeCache(folder, name))
    scan.verdicts_of("node-200")
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from refnode.chain import Rates
from shakedown.observe import (
    BUCKET,
    IndexRow,
    MinuteUsage,
    index_digest,
    read_envelope_blobs,
    read_envelope_index,
    read_index_digests,
    read_usage_by_minute,
)
from shakedown.verify.opened import POOL_THRESHOLD, Opened, Opener
from shakedown.verify.signatures import envelope_problems
from shakedown.verify.usage import priced_usage

Bucket = tuple[int, int]  # (originator, sequence id // BUCKET)


class Verdict(NamedTuple):
    """What one bucket of rows says, for given signers and rates."""

    rows: int
    signature_problems: tuple[str, ...]
    pricing_problems: tuple[str, ...]
    usage: tuple[tuple[str, int, int, int, int, int], ...]  # payer, originator, minute, spend,
    #                                                         count, last sequence


@dataclass(frozen=True)
class NodeScan:
    """One node's bucket digests and unsettled usage, read in one snapshot."""

    buckets: dict[Bucket, str]
    usage: dict[tuple[str, int, int], MinuteUsage]


@dataclass
class EnvelopeScan:
    """Per node what it holds, or why it could not be read; per digest the verdict."""

    nodes: dict[str, NodeScan] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    judged: int = 0   # rows judged in this scan (the other buckets' verdicts were kept)
    opened: int = 0   # envelopes whose signatures were recovered in this scan

    def verdicts_of(self, node: str) -> list[Verdict]:
        """The verdict of each of ``node``'s buckets (one naming a bucket left unjudged)."""
        found = []
        for (originator, bucket), digest in sorted(self.nodes[node].buckets.items()):
            verdict = self.verdicts.get(digest)
            if verdict is None:
                verdict = Verdict(0, (f"originator {originator}: envelopes from sequence "
                                      f"{bucket * BUCKET} could not be read; run again",), (), ())
            found.append(verdict)
        return found


class EnvelopeCache:
    """Verdicts by bucket digest and opened envelopes by sha256, kept between runs.

    Both are keyed by content (and the verdicts also by the signers and rates they were
    judged with), so they are never stale: changed rows have another digest. A file that does
    not load (another Python, damage) is ignored; one that cannot be written is skipped.
    """

    FORMAT = ("shakedown-verify", 2, sys.version_info[:2])
    MAX_OPENED = 3_000_000  # past this the opened envelopes start over
    MAX_AGE_S = 7 * 86_400  # files of testnets not verified for a week are removed
    KEEP = 32

    def __init__(self, folder: Path, name: str) -> None:
        self.verdicts_path = folder / f"{name}.verdicts"
        self.opened_path = folder / f"{name}.opened"

    def _load(self, path: Path) -> dict[Any, Any]:
        try:
            header, entries = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return entries if header == self.FORMAT and isinstance(entries, dict) else {}

    def _save(self, path: Path, entries: dict[Any, Any]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._prune(path.parent)
            except OSError:  # another run pruned at the same moment
                pass
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(marshal.dumps((self.FORMAT, entries)))
            os.replace(partial, path)
        except OSError:
            pass

    def _prune(self, folder: Path) -> None:
        """Forget testnets untouched for MAX_AGE_S, or beyond the KEEP most recently verified
        (scenario runs make a fresh testnet each)."""
        cutoff = time.time() - self.MAX_AGE_S
        files = sorted(folder.glob("*.verdicts"), key=lambda f: f.stat().st_mtime, reverse=True)
        for k, old in enumerate(files):
            if old != self.verdicts_path and (k >= self.KEEP or old.stat().st_mtime < cutoff):
                old.unlink(missing_ok=True)
                old.with_suffix(".opened").unlink(missing_ok=True)

    def load_verdicts(self, context: str) -> dict[str, Verdict]:
        return {d: Verdict(*v) for (c, d), v in self._load(self.verdicts_path).items()
                if c == context}

    def save_verdicts(self, context: str, verdicts: dict[str, Verdict]) -> None:
        """Keep exactly these (the digests the testnet holds now)."""
        self._save(self.verdicts_path, {(context, d): tuple(v) for d, v in verdicts.items()})

    def load_opened(self) -> dict[bytes, tuple[Any, ...]]:
        return self._load(self.opened_path)

    def save_opened(self, opened: dict[bytes, tuple[Any, ...]]) -> None:
        self._save(self.opened_path, opened if len(opened) <= self.MAX_OPENED else {})


def _begin(conn: psycopg.Connection
           ) -> tuple[AbstractContextManager[Any], NodeScan, dict[Bucket, int]]:
    """Open the node's snapshot and read its bucket digests, row counts and usage in it; the
    caller ends the transaction once the rows it needs were read in the same snapshot."""
    tx = conn.transaction()
    tx.__enter__()
    try:
        digests = read_index_digests(conn)
        usage = read_usage_by_minute(conn)
    except BaseException as e:
        _end(tx, e)
        raise
    return (tx, NodeScan({b: d for b, (_, d) in digests.items()}, usage),
            {b: n for b, (n, _) in digests.items()})


@dataclass
class _Pull:
    """Reads the rows of claimed buckets and hands each envelope once to the opener as soon
    as its bytes are read (unless its opening was kept from an earlier run)."""

    opener: Opener
    stored: dict[bytes, tuple[Any, ...]]
    sent: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, conn: psycopg.Connection, claimed: list[tuple[Bucket, str]]
             ) -> dict[str, list[IndexRow]]:
        rows = {}
        for (originator, bucket), digest in claimed:
            rows[digest] = read_envelope_index(conn, originator, bucket)
            with self.lock:
                keys = {r.sha256: (r.originator_node_id, r.sequence_id) for r in rows[digest]
                        if r.sha256 not in self.stored and r.sha256 not in self.sent}
                self.sent.update(keys)
            self.opener.submit(list(read_envelope_blobs(conn, list(keys.values())).values()))
        return rows


def judge(rows: list[IndexRow], opened: dict[bytes, Opened], signers: dict[int, str],
          schedule: list[Rates], grace_s: float) -> Verdict:
    """One bucket's verdict (pure)."""
    pairs = [(r, opened.get(r.sha256)) for r in rows]
    signature: list[str] = []
    for row, env in pairs:
        signature += envelope_problems(row, env, signers)
    usage, pricing = priced_usage(pairs, schedule, grace_s)
    return Verdict(len(rows), tuple(signature), tuple(pricing),
                   tuple((p, o, m, u[0], u[1], u[2]) for (p, o, m), u in sorted(usage.items())))


def scan_envelopes(conns: dict[str, psycopg.Connection], signers: dict[int, str],
                   schedule: list[Rates], *, grace_s: float, cache: EnvelopeCache | None = None,
                   workers: int | None = None) -> EnvelopeScan:
    """Read every node's buckets, judge each digest not judged before, keep the verdicts.

    Every node's digests first, in parallel; then the rows of each digest never judged, from
    the first node holding it, in that node's same snapshot, their envelopes opened on every
    core while the nodes are still being read.
    """
    context = hashlib.sha256(repr((sorted(signers.items()), schedule, grace_s)).encode()
                             ).hexdigest()
    kept = cache.load_verdicts(context) if cache is not None else {}
    scan = EnvelopeScan()
    with ExitStack() as snapshots:
        counts: dict[str, dict[Bucket, int]] = {}
        with ThreadPoolExecutor(max(1, len(conns))) as pool:
            begun = {n: pool.submit(_begin, c) for n, c in conns.items()}
            for name, future in begun.items():
                try:
                    tx, scan.nodes[name], counts[name] = future.result()
                except psycopg.Error as e:
                    scan.errors[name] = _unreadable(name, e)
                    continue
                snapshots.callback(_end, tx)
        claims: dict[str, list[tuple[Bucket, str]]] = {}
        claimed: set[str] = set()
        for name, node in scan.nodes.items():
            for bucket, digest in sorted(node.buckets.items()):
                if digest not in kept and digest not in claimed:
                    claimed.add(digest)
                    claims.setdefault(name, []).append((bucket, digest))
        pulled: dict[str, list[IndexRow]] = {}
        opened: dict[bytes, Opened] = {}
        if claims:
            unjudged = sum(counts[n][b] for n, c in claims.items() for b, _ in c)
            pulled, opened = _pull(conns, claims, cache, workers if unjudged >= POOL_THRESHOLD
                                   else 1, scan)
    for digest, rows in pulled.items():
        scan.verdicts[digest] = judge(rows, opened, signers, schedule, grace_s)
        scan.judged += len(rows)
        if index_digest(rows) != digest or any(r.sha256 not in opened for r in rows):
            continue  # moved while read: judged for this run only
        kept[digest] = scan.verdicts[digest]
    held = {d for node in scan.nodes.values() for d in node.buckets.values()}
    scan.verdicts.update((d, v) for d, v in kept.items() if d in held)
    if cache is not None and pulled:
        cache.save_verdicts(context, {d: v for d, v in kept.items() if d in held})
    return scan


def _pull(conns: dict[str, psycopg.Connection], claims: dict[str, list[tuple[Bucket, str]]],
          cache: EnvelopeCache | None, workers: int | None, scan: EnvelopeScan
          ) -> tuple[dict[str, list[IndexRow]], dict[bytes, Opened]]:
    """The rows of every claimed digest and sha256 -> Opened for each of them (kept ones,
    then the rest opened while read); a node that fails here is named in ``scan.errors``."""
    stored = cache.load_opened() if cache is not None else {}
    pulled: dict[str, list[IndexRow]] = {}
    with Opener(workers) as opener:  # forked before the reading threads start
        pull = _Pull(opener, stored)
        with ThreadPoolExecutor(len(claims)) as pool:
            reads = {n: pool.submit(pull.read, conns[n], c) for n, c in claims.items()}
            for name, future in reads.items():
                try:
                    pulled.update(future.result())
                except psycopg.Error as e:
                    scan.errors[name] = _unreadable(name, e)
        fresh = opener.results()
    scan.opened = len(fresh)
    opened = {r.sha256: Opened(*stored[r.sha256]) for rows in pulled.values() for r in rows
              if r.sha256 in stored}
    opened.update(fresh)
    if cache is not None and fresh:
        stored.update((k, tuple(v)) for k, v in fresh.items())
        cache.save_opened(stored)
    return pulled, opened


def _end(tx: AbstractContextManager[Any], error: BaseException | None = None) -> None:
    """End a snapshot; a connection that broke meanwhile was reported by its reads."""
    try:
        tx.__exit__(type(error) if error else None, error, error.__traceback__ if error else None)
    except psycopg.Error:
        pass


def _unreadable(name: str, error: psycopg.Error) -> str:
    return f"{name}: rows not readable: {type(error).__name__}: {error}".strip()
