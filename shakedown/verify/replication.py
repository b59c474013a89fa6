"""Replication checks: canonical nodes converge, and no originator's sequence has a hole.

Convergence compares server-side aggregates (vector clock, count, highest sequence and an
md5 over every envelope per originator), polled until they agree or the settle window ends;
only then are the rows of a differing originator read, to name the sequences that differ.

    problems = check_converged(conns, originators={100, 200, 300}, settle_s=30)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from shakedown.errors import TimeoutExpired
from shakedown.observe import (
    OriginatorDigest,
    envelope_tables,
    read_duplicate_sequences,
    read_missing_sequences,
    read_originator_digests,
    read_row_digests,
    read_sequence_summary,
    read_vector_clock,
)
from shakedown.waiting import wait_for

SHOW = 5  # sequence ids named per problem


@dataclass(frozen=True)
class ReplicaState:
    """One node's vector clock and per-originator envelope digests, read together."""

    clock: dict[int, int]
    digests: dict[int, OriginatorDigest]


def read_replica_state(conn: psycopg.Connection) -> ReplicaState:
    with conn.transaction():  # one snapshot: the clock and the rows agree
        return ReplicaState(read_vector_clock(conn), read_originator_digests(conn))


def read_states(conns: dict[str, psycopg.Connection]) -> dict[str, ReplicaState]:
    """Every node's state, read concurrently (the server computes the digests in parallel)."""
    with ThreadPoolExecutor(max(1, len(conns))) as pool:
        futures = {name: pool.submit(read_replica_state, c) for name, c in conns.items()}
        return {name: f.result() for name, f in futures.items()}


def _majority(values: Mapping[str, object]) -> object:
    """The value most nodes hold (ties: the first node's), the reference others are named by."""
    counts = Counter(values.values())
    best = max(counts.values())
    return next(v for v in values.values() if counts[v] == best)


def _holders(values: Mapping[str, object], value: object) -> str:
    return " and ".join(n for n, v in values.items() if v == value)


def convergence_problems(states: dict[str, ReplicaState], originators: set[int]) -> list[str]:
    """What keeps these nodes from agreeing on ``originators``' envelopes (pure)."""
    problems = []
    for name, state in states.items():
        for o in sorted(originators):
            clock = state.clock.get(o, 0)
            stored = state.digests[o].max_sequence_id if o in state.digests else 0
            if clock != stored:
                problems.append(f"{name}: originator {o}: vector clock at {clock} but the "
                                f"highest stored sequence is {stored}")
    for o in sorted(originators):
        clocks = {n: s.clock.get(o, 0) for n, s in states.items()}
        ref = _majority(clocks)
        for name, clock in clocks.items():
            if clock != ref:
                problems.append(f"{name}: originator {o}: vector clock at {clock}, "
                                f"{_holders(clocks, ref)} at {ref}")
        digests = {n: s.digests.get(o) for n, s in states.items()}
        ref_digest = _majority(digests)
        for name, digest in digests.items():
            if digest != ref_digest:
                problems.append(f"{name}: originator {o}: envelope set differs from "
                                f"{_holders(digests, ref_digest)} ({_count(digest)} envelopes "
                                f"up to {_top(digest)} vs {_count(ref_digest)} up to "
                                f"{_top(ref_digest)})")
    return problems


def _count(d: object) -> int:
    return d.count if isinstance(d, OriginatorDigest) else 0


def _top(d: object) -> int:
    return d.max_sequence_id if isinstance(d, OriginatorDigest) else 0


def locate_differences(conns: dict[str, psycopg.Connection], states: dict[str, ReplicaState],
                       originators: set[int]) -> list[str]:
    """For each originator whose digests differ: the sequences each odd node lacks, adds or
    holds with other bytes than the majority."""
    found = []
    for o in sorted(originators):
        digests = {n: s.digests.get(o) for n, s in states.items()}
        ref = _majority(digests)
        odd = [n for n, d in digests.items() if d != ref]
        if not odd:
            continue
        ref_name = next(n for n, d in digests.items() if d == ref)
        want = read_row_digests(conns[ref_name], o)
        for name in odd:
            have = read_row_digests(conns[name], o)
            lacks = sorted(want.keys() - have.keys())
            extra = sorted(have.keys() - want.keys())
            other = sorted(s for s in want.keys() & have.keys() if want[s] != have[s])
            for label, seqs in (("lacks", lacks), ("holds extra", extra),
                                (f"holds other bytes than {ref_name} for", other)):
                if seqs:
                    found.append(f"{name}: originator {o} {label} sequence "
                                 f"{_ids(seqs)}")
    return found


def _ids(seqs: list[int]) -> str:
    shown = ", ".join(map(str, seqs[:SHOW]))
    return shown + (f" (and {len(seqs) - SHOW} more)" if len(seqs) > SHOW else "")


def wait_converged(conns: dict[str, psycopg.Connection], originators: set[int], *,
                   timeout: float) -> dict[str, ReplicaState]:
    """Poll until the nodes agree on ``originators``; TimeoutExpired naming what differed last.

    Example: ``wait_converged(conns, {100, 200, 300}, timeout=30)``
    """
    last: list[list[str]] = [[]]

    def agree(states: dict[str, ReplicaState]) -> bool:
        last[0] = convergence_problems(states, originators)
        return not last[0]

    try:
        return wait_for(lambda: read_states(conns), agree, timeout=timeout, what="convergence",
                        interval=0.25)
    except TimeoutExpired as e:
        if not last[0]:
            raise  # the reads themselves failed: the error names the last one
        raise TimeoutExpired(f"not converged within {timeout:g}s: {'; '.join(last[0])}") from e


def check_converged(conns: dict[str, psycopg.Connection], originators: set[int], *,
                    settle_s: float) -> list[str]:
    """Wait up to ``settle_s`` for equal clocks and envelope sets; then say what differs."""
    try:
        wait_converged(conns, originators, timeout=settle_s)
        return []
    except TimeoutExpired as e:
        try:
            states = read_states(conns)
        except psycopg.Error:
            return [str(e)]
    problems = convergence_problems(states, originators)
    if not problems:
        return []  # converged just after the deadline
    located = locate_differences(conns, states, originators)
    return [f"not converged within {settle_s:g}s:", *problems, *located]


def check_sequences(conn: psycopg.Connection, node: str) -> list[str]:
    """Per originator, in both envelope tables: ids 1..max, each once, the same max in both.
    The blob table is named as this database names it (xmtpd renamed it in 00023)."""
    tables = envelope_tables(conn)
    summaries = {t: read_sequence_summary(conn, t) for t in tables}
    meta, blob = tables
    problems = []
    for o in sorted(set(summaries[meta]) | set(summaries[blob])):
        for table in tables:
            s = summaries[table].get(o)
            if s is None:
                problems.append(f"{node}: originator {o}: no rows in {table}")
                continue
            if s.count > s.distinct:
                dups = read_duplicate_sequences(conn, o, table, SHOW)
                shown = ", ".join(f"{seq} ({n} times)" for seq, n in dups.items())
                problems.append(f"{node}: originator {o}: {s.count - s.distinct} duplicate "
                                f"rows in {table}: sequence {shown}")
            if s.min_id < 1:
                problems.append(f"{node}: originator {o}: sequence {s.min_id} in {table}; "
                                "sequences start at 1")
            if s.distinct < s.max_id:
                missing = read_missing_sequences(conn, o, table, SHOW)
                gap = s.max_id - s.distinct + (1 if s.min_id < 1 else 0)
                problems.append(f"{node}: originator {o}: {gap} sequence(s) missing in {table} "
                                f"below {s.max_id}: {_ids(missing)}")
        m, b = summaries[meta].get(o), summaries[blob].get(o)
        if m and b and m.max_id != b.max_id:
            problems.append(f"{node}: originator {o}: {meta} ends at sequence {m.max_id}, "
                            f"{blob} at {b.max_id}")
    return problems
