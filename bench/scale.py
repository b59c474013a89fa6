"""Many nodes on one Docker host: deploy time per node, RSS per node, replication as N grows.

Usage: ``.venv/bin/python -m bench.scale [--nodes 10 --nodes 50] [--envelopes 250]`` (from the
repository root). Images must be built. For each node count N, on fresh testnets:

- ``up`` per node: ``shakedown up`` / N; floor: the same containers by bare ``docker run`` plus
  the same contract deploy, databases, proxies, registrations and health wait (``bench.deploy``),
  measured in the same run, / N;
- PSS and RSS per node (each node container's processes, from /proc) after the deploy and
  after traffic;
- connections through the one proxy (its established TCP sockets) against n x (n - 1), the
  subscriptions of every node to every other;
- idle CPU of the whole testnet (cgroup cpuacct over 10 s), in cores, by kind of service;
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


def memory_mb(client: docker.DockerClient, testnet: str, kind: str) -> tuple[list[float],
                                                                              list[float]]:
    """RSS and PSS (MB) of each container of ``kind`` (``node``...), all its processes summed.
    A node's checker workers are forked from it and share its pages: RSS counts those once per
    process, PSS splits them, so PSS is what the node costs the machine."""
    rss, pss = [], []
    for c in client.containers.list(filters={"label": f"{LABEL_TESTNET}={testnet}"}):
        if not c.labels.get(LABEL_SERVICE, "").startswith(kind):
            continue
        pids = Path(f"/sys/fs/cgroup/memory/docker/{c.id}/cgroup.procs").read_text().split()
        rss.append(sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids) / 1024)
        pss.append(sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024)
    return sorted(rss), sorted(pss)


def _kb(path: str, field: str) -> int:
    try:
        text = Path(path).read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) for ln in text.splitlines() if ln.startswith(field)), 0)


def idle_cores(client: docker.DockerClient, testnet: str, seconds: float = 10.0
               ) -> dict[str, float]:
    """CPU the testnet's containers use, in cores, over ``seconds`` (cgroup v1 cpuacct), per
    kind of service (``node``, ``db``, ``proxy``, ``chain``, ``gateway``)."""
    kinds = {c.id: c.labels.get(LABEL_SERVICE, "?").split("-")[0]
             for c in client.containers.list(filters={"label": f"{LABEL_TESTNET}={testnet}"})}

    def used() -> dict[str, int]:
        return {i: int(Path(f"/sys/fs/cgroup/cpuacct/docker/{i}/cpuacct.usage").read_text())
                for i in kinds}

    before = used()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    after = used()
    cores: dict[str, float] = {}
    for i, kind in kinds.items():
        cores[kind] = cores.get(kind, 0.0) + (after[i] - before[i]) / 1e9 / seconds
    return dict(sorted(cores.items(), key=lambda kv: -kv[1]))


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
        rss, pss = memory_mb(client, t.name, "node")
        links = proxy_connections(client, t)
        idle = idle_cores(client, t.name)
        publish, converge = replicate(t, envelopes)
        rss_after, pss_after = memory_mb(client, t.name, "node")
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
    for label, up_mb, after_mb in (("PSS", pss, pss_after), ("RSS", rss, rss_after)):
        print(f"    {label} per node after up {min(up_mb):.0f}-{max(up_mb):.0f} MB (median "
              f"{up_mb[len(up_mb) // 2]:.0f}), after traffic {min(after_mb):.0f}-"
              f"{max(after_mb):.0f}")
    print(f"    proxy: {links} established sockets; n(n-1) = {n * (n - 1)} subscriptions; "
          f"idle testnet {sum(idle.values()):.2f} cores ({sum(idle.values()) / n * 100:.1f}% "
          f"of a core per node: " + ", ".join(f"{k} {v:.2f}" for k, v in idle.items()) + ")")
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
