"""refnode throughput, replication lag and memory, against a batched-insert floor.

Figures (issue 2): envelopes/s accepted by one node; envelopes/s published and fully
replicated on 3 nodes; replication lag p50/p99 at half that rate; RSS per node. The floor is
PostgreSQL itself: the same rows written by one batched INSERT ... SELECT unnest(...).

    .venv/bin/python bench/refnode_throughput.py [--envelopes 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from refnode.envelopes import Signer, recover
from refnode.store import Store, StoredEnvelope
from shakedown.client import NodeClient
from shakedown.keys import payer
from shakedown.machine import describe
from shakedown.procs.anvil import AnvilProcess
from shakedown.procs.cluster import ProcessCluster
from shakedown.procs.postgres import PostgresProcess
from shakedown.traffic import NodeTarget, Traffic
from shakedown.waiting import wait_for

PAYERS = [Signer(bytes(payer(i).key)) for i in range(4)]
TIMEOUT_S = 120  # per publish call: a loaded shared machine can stall one for seconds


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def accept_rate(cluster: ProcessCluster, node_id: int, n: int) -> float:
    traffic = Traffic([NodeTarget(cluster.nodes[node_id].endpoint, node_id)], rate=0,
                      duration_s=120, max_envelopes=n, batch=200, payers=PAYERS, workers=4,
                      timeout=TIMEOUT_S)
    start = time.monotonic()
    stats = traffic.run()
    assert stats.failed == 0, stats.errors
    return stats.acked / (time.monotonic() - start)


def clock_of(cluster: ProcessCluster, node_id: int) -> dict[int, int]:
    with NodeClient(cluster.nodes[node_id].endpoint) as client:
        return dict(client.health().vector_clock.node_id_to_sequence_id)


def replicated_rate(cluster: ProcessCluster, n: int) -> float:
    ids = sorted(cluster.nodes)
    before = {i: clock_of(cluster, i).get(i, 0) for i in ids}
    targets = [NodeTarget(cluster.nodes[i].endpoint, i) for i in ids]
    start = time.monotonic()
    stats = Traffic(targets, rate=0, duration_s=300, max_envelopes=n, batch=200,
                    payers=PAYERS, workers=6, timeout=TIMEOUT_S).run()
    assert stats.failed == 0, stats.errors
    expected = dict(before)
    for ack in stats.acks:
        expected[ack.originator_node_id] = max(expected[ack.originator_node_id], ack.sequence_id)
    for i in ids:
        wait_for(lambda i=i: clock_of(cluster, i), lambda c: all(
            c.get(o, 0) >= s for o, s in expected.items()), timeout=300, interval=0.02,
            what=f"node {i} replicated")
    return stats.acked / (time.monotonic() - start)


def lag_at(cluster: ProcessCluster, rate: float, seconds: float) -> list[float]:
    """Ack-to-visible delay on the other nodes, sampled every 5 ms from their clocks."""
    src, *others = sorted(cluster.nodes)
    samples: dict[int, list[tuple[float, int]]] = {o: [] for o in others}
    done = threading.Event()

    def sample(o: int) -> None:
        with NodeClient(cluster.nodes[o].endpoint) as client:
            while not done.is_set():
                seq = client.health().vector_clock.node_id_to_sequence_id.get(src, 0)
                samples[o].append((time.monotonic(), seq))
                time.sleep(0.005)

    threads = [threading.Thread(target=sample, args=(o,)) for o in others]
    for t in threads:
        t.start()
    stats = Traffic([NodeTarget(cluster.nodes[src].endpoint, src)], rate=rate,
                    duration_s=seconds, max_envelopes=int(rate * seconds), batch=10,
                    payers=PAYERS, workers=2, timeout=TIMEOUT_S).run()
    last = max(a.sequence_id for a in stats.acks)
    for o in others:
        wait_for(lambda o=o: samples[o][-1][1] if samples[o] else 0, lambda s: s >= last,
                 timeout=60, what=f"node {o} caught up")
    done.set()
    for t in threads:
        t.join()
    lags = []
    for o in others:
        seen = samples[o]
        j = 0
        for ack in sorted(stats.acks, key=lambda a: a.sequence_id):
            while j < len(seen) and seen[j][1] < ack.sequence_id:
                j += 1
            if j < len(seen):
                lags.append(max(0.0, seen[j][0] - ack.acked_at))
    return lags


def insert_floor(pg: PostgresProcess, n: int) -> float:
    """Rows/s for a batched insert of the same rows a node stores, on the same server."""
    async def run() -> float:
        store = await Store.open(pg.create_database("bench_floor"))
        await store.migrate()
        blob = b"x" * 260
        rows = [StoredEnvelope(999, i, time.time_ns(), b"topic/bench", PAYERS[0].address,
                               0, 1300, blob) for i in range(1, n + 1)]
        start = time.monotonic()
        for k in range(0, n, 2000):
            await store.insert_envelopes(rows[k:k + 2000])
        elapsed = time.monotonic() - start
        await store.close()
        return n / elapsed
    return asyncio.run(run())


def signature_ceiling(n: int = 2000) -> float:
    """Envelopes/s the 3-node replicated path allows from its signature work alone, on every
    core of this machine: per envelope two signs (payer, originator) and five recoveries (the
    originator checks the payer; each of two replicas checks both)."""
    signer = PAYERS[0]
    digests = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    started = time.perf_counter()
    signatures = [signer.sign(d) for d in digests]
    sign_s = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for d, sig in zip(digests, signatures, strict=True):
        recover(d, sig)
    recover_s = (time.perf_counter() - started) / n
    return (os.cpu_count() or 1) / (2 * sign_s + 5 * recover_s)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=20_000)
    parser.add_argument("--lag-seconds", type=float, default=10)
    opts = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as logs, AnvilProcess() as anvil, \
            PostgresProcess() as pg:
        cluster = ProcessCluster.deploy(anvil.rpc_url, pg, Path(logs))
        try:
            for _ in range(3):
                cluster.add_node()
            floor = insert_floor(pg, opts.envelopes)
            one = accept_rate(cluster, min(cluster.nodes), opts.envelopes)
            three = replicated_rate(cluster, opts.envelopes)
            lags = lag_at(cluster, three / 2, opts.lag_seconds)
            rss = {i: rss_mb(p.proc.pid) for i, p in cluster.nodes.items() if p.proc}
        finally:
            cluster.stop()
    ceiling = signature_ceiling()
    print(f"floor: batched INSERT of node rows      {floor:10.0f} rows/s")
    print(f"one node accepts                        {one:10.0f} envelopes/s "
          f"({one / floor:.2f} of floor)")
    print(f"published and replicated on 3 nodes     {three:10.0f} envelopes/s "
          f"({three / floor:.2f} of floor)")
    print(f"ceiling: its signature work alone       {ceiling:10.0f} envelopes/s "
          f"({ceiling / floor:.2f} of floor; replicated rate {three / ceiling:.2f} of it)")
    print(f"replication lag at {three / 2:.0f}/s: p50 {pct(lags, 50) * 1000:.1f} ms, "
          f"p99 {pct(lags, 99) * 1000:.1f} ms ({len(lags)} samples)")
    print("RSS per node: " + ", ".join(f"{i}: {mb:.0f} MB" for i, mb in sorted(rss.items())))


if __name__ == "__main__":
    main()
