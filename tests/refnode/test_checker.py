"""Signature checks in worker processes: same verdicts as in the loop, workers that do the
work on a real node, and that leave with their node however it ends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

from refnode import envelopes as e
from refnode.checker import Checker, open_originators
from refnode.proto import refnode_pb2 as pb
from shakedown.client import payer_envelopes
from shakedown.keys import node_signer, payer
from shakedown.procs.cluster import ProcessCluster
from shakedown.traffic import NodeTarget, Traffic
from shakedown.waiting import wait_for

PAYER = e.Signer(bytes(payer(0).key))


def originator_envelopes(count: int) -> list[pb.OriginatorEnvelope]:
    """``count`` envelopes of node 100, every seventh one broken in another way."""
    signer = e.Signer(bytes(node_signer(0).key))
    found = []
    for i, env in enumerate(payer_envelopes(PAYER, 100, count)):
        if i % 7 == 3:
            env.payer_signature = b"\x01" * 65
        unsigned = pb.UnsignedOriginatorEnvelope(
            originator_node_id=100, originator_sequence_id=i + 1, originator_ns=i,
            payer_envelope_bytes=env.SerializeToString())
        signed = e.sign_originator_envelope(signer, unsigned)
        if i % 7 == 5:
            signed.unsigned_originator_envelope = b"\xff\xff"
        found.append(signed)
    return found


def describe(results: list[object]) -> list[tuple[str, ...]]:
    return [("error", str(r)) if isinstance(r, e.InvalidEnvelope)
            else ("ok", r.signer, r.payer.payer, str(r.sequence_id))  # type: ignore[attr-defined]
            for r in results]


def test_workers_open_envelopes_as_the_loop_does() -> None:
    envs = originator_envelopes(300)
    in_loop = describe(open_originators([x.SerializeToString() for x in envs]))
    checker = Checker(workers=2)
    try:
        pooled = describe(asyncio.run(checker.open_originators(envs)))
    finally:
        checker.close()
    assert pooled == in_loop
    assert {kind for kind, *_ in pooled} == {"ok", "error"}
    assert len(pooled) == 300


CHILD = textwrap.dedent("""
    import os, sys
    from refnode.checker import Checker
    checker = Checker(workers=2)
    print(" ".join(str(p) for p in checker.pids), flush=True)
    sys.stdin.read()
""")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_leave_when_their_node_is_killed() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        workers = [int(p) for p in child.stdout.readline().split()]
        assert len(workers) == 2 and all(alive(p) for p in workers)
        child.kill()  # SIGKILL: no shutdown path runs
        child.wait(10)
        wait_for(lambda: [p for p in workers if alive(p)], lambda left: not left, timeout=30,
                 what="signature workers of a killed node exit")
    finally:
        child.kill()
        child.wait(10)


def children_cpu_ticks(pid: int) -> int:
    """CPU ticks (user + system) used so far by the live children of ``pid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total


def test_replicated_signatures_are_checked_in_the_workers(three_nodes: ProcessCluster) -> None:
    a, _, c = sorted(three_nodes.nodes)
    follower = three_nodes.nodes[c].proc
    assert follower is not None
    before = children_cpu_ticks(follower.pid)
    stats = Traffic([NodeTarget(three_nodes.nodes[a].endpoint, a)], rate=0, duration_s=60,
                    max_envelopes=2000, batch=200, payers=[PAYER], timeout=120).run()
    assert stats.failed == 0, stats.errors

    def clock() -> dict[int, int]:
        with three_nodes.nodes[c].client() as client:
            return dict(client.health().vector_clock.node_id_to_sequence_id)

    wait_for(clock, lambda seen: seen.get(a, 0) >= 2000, timeout=120,
             what=f"node {c} replicates node {a}")
    # 4,000 recoveries take well over a tick of CPU; in the node's own loop they took none
    # of its children's.
    assert children_cpu_ticks(follower.pid) > before
