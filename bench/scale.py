"""Many nodes on one Docker host: deploy time per node, RSS per node, replication as N grows.

Usage: ``.venv/bin/python -m bench.scale [--nodes 10 --nodes 50] [--envelopes 250]`` (from the
repository root). Images must be built. For each node count N, on fresh testnets:

- ``up`` per node: ``shakedown up`` / N; floor: the same containers by bare ``docker run`` plus
  the same contract deploy, databases, proxies, registrations and health wait (``bench.deploy``),
  measured in the same run, / N;
- RSS per node (each node container's processes, from /proc) after the deploy and after traffic;
- connections through the one proxy (its established TCP sockets) against n x (n - 1), the
  subscriptions of every node to every other;
- idle CPU of the whole testnet (cgroup cpuacct over 10 s), in cores;
- replication: ``--envelopes`` published spread over all nodes, then the time until every node
  holds all of them, as envelopes replicated per second (N - 1 copies each); floor: the same
  publish acknowledged (the nodes' own ingest, no replica waited for);
- ``pytest verify/`` wall time; ``down``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import psycopg

from bench.deploy import REPO, cli, floor_down, floor_up, machine, make_testnet, timed
from refnode.envelopes import Signer
from shakedown.deploy.docker import LABEL_SERVICE, LABEL_TESTNET
from shakedown.deploy.record import load_record
from shakedown.images import connect, ensure_images
from shakedown.keys import payer
from shakedown.model import Images, Testnet
from shakedown.traffic import NodeTarget, Traffic
from shakedown.verify.replication import wait_converged


def rss_mb(client: docker.DockerClient, testnet: str, kind: str) -> list[float]:
    """RSS (MB) of each container of ``kind`` (``node``...), all its processes summed."""
    found = []
    for c in client.containers.list(filters={"label": f"{LABEL_TESTNET}={testnet}"}):
        if not c.labels.get(LABEL_SERVICE, "").startswith(kind):
            continue
        pids = Path(f"/sys/fs/cgroup/memory/docker/{c.id}/cgroup.procs").read_text().split()
        found.append(sum(_rss_kb(p) for p in pids) / 1024)
    return sorted(found)


def _rss_kb(pid: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS")), 0)


def idle_cores(client: docker.DockerClient, testnet: str, seconds: float = 10.0) -> float:
    """CPU the testnet's containers use, in cores, over ``seconds`` (cgroup v1 cpuacct)."""
    ids = [c.id for c in client.containers.list(filters={"label": f"{LABEL_TESTNET}={testnet}"})]

    def used() -> int:
        return sum(int(Path(f"/sys/fs/cgroup/cpuacct/docker/{i}/cpuacct.usage").read_text())
                   for i in ids)

    before = used()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    return (used() - before) / 1e9 / seconds


def proxy_connections(client: docker.DockerClient, t: Testnet) -> int:
    """Established TCP sockets in the proxy's network namespace (both ends of every stream)."""
    pid = client.containers.get(t.container("proxy")).attrs["State"]["Pid"]
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", "ss", "-Htn", "state", "established"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def replicate(t: Testnet, envelopes: int) -> tuple[float, float]:
    """(publish seconds, seconds from the last ack until every node holds every envelope)."""
    rec = load_record(t.record_path)
    assert rec
    started = time.monotonic()
    stats = Traffic([NodeTarget(n["grpc"], n["node_id"]) for n in rec["nodes"]], rate=0,
                    duration_s=900, max_envelopes=envelopes, batch=5, workers=4,
                    payers=[Signer(bytes(payer(0).key))], timeout=120).run()
    published = time.monotonic()
    if stats.acked != envelopes:
        sys.exit(f"bench: {stats.acked} of {envelopes} acked: {stats.errors}")
    conns = {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=60)
             for n in rec["nodes"]}
    try:
        wait_converged(conns, {n["node_id"] for n in rec["nodes"]}, timeout=1800)
    finally:
        for c in conns.values():
            c.close()
    return published - started, time.monotonic() - published


def bench(n: int, images: Images, folder: Path, envelopes: int,
          client: docker.DockerClient) -> None:
    t, inventory = make_testnet(folder, n, images, health_timeout=max(90, 20 * n))
    try:
        up = timed(lambda: cli("up", "-i", str(inventory)))
        rss = rss_mb(client, t.name, "node")
        links = proxy_connections(client, t)
        idle = idle_cores(client, t.name)
        publish, converge = replicate(t, envelopes)
        rss_after = rss_mb(client, t.name, "node")
        verify = timed(lambda: subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "verify/",
             f"--inventory={inventory}"], cwd=REPO, capture_output=True, check=True,
            timeout=3600))
    finally:
        down = timed(lambda: cli("down", "-i", str(inventory)))
    f, _ = make_testnet(folder, n, images, health_timeout=max(90, 20 * n))
    try:
        floor = timed(lambda: floor_up(f, images))
    finally:
        floor_down(f)
    copies = envelopes * (n - 1)
    print(f"{n:>3} nodes: up {up:.1f} s = {up / n:.2f} s/node, floor {floor / n:.2f} s/node "
          f"({up / floor:.2f}x); down {down:.1f} s")
    print(f"    RSS per node after up {min(rss):.0f}-{max(rss):.0f} MB (median "
          f"{rss[len(rss) // 2]:.0f}), after traffic {min(rss_after):.0f}-{max(rss_after):.0f}")
    print(f"    proxy: {links} established sockets; n(n-1) = {n * (n - 1)} subscriptions; "
          f"idle testnet {idle:.2f} cores ({idle / n * 100:.1f}% of a core per node)")
    print(f"    {envelopes} envelopes acked in {publish:.1f} s ({envelopes / publish:.0f}/s, the "
          f"floor); all on every node {converge:.1f} s later: {copies / (publish + converge):.0f}"
          f" copies/s, {(publish + converge) / publish:.2f}x the floor; verify {verify:.1f} s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, action="append", help="node counts (default 10, 50)")
    parser.add_argument("--envelopes", type=int, default=250)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    client = connect()
    found = ensure_images(client, log=lambda line: None)
    images = Images(node=found.node, anvil=found.anvil, postgres=found.postgres,
                    toxiproxy=found.toxiproxy)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in args.nodes or [10, 50]:
            bench(n, images, Path(tmp), args.envelopes, client)


if __name__ == "__main__":
    main()
