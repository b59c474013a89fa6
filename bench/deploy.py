"""Time a local testnet deploy against its floor, measured in the same run.

Usage: ``.venv/bin/python bench/deploy.py [--nodes 3] [--nodes 10] [--rounds 1]``. Images must
be built (``python -m shakedown.images``); they are found first and pinned, so the figures are
for a warm deploy. For each node count it times, on fresh testnets with their own names:

- ``up``: ``shakedown up`` (pyinfra, change detection, every role, nodes healthy);
- ``re-run``: the same ``up`` with nothing to change;
- ``down``: ``shakedown down``;
- ``floor up``: the same containers with bare ``docker run`` plus the same contract deploy,
  databases, proxies, registrations and health wait, no pyinfra; ``floor down``: ``docker rm``.

Prints the machine, then one row per figure with the ratio to its floor.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shakedown.deploy import chain, db, gateway, node, proxy
from shakedown.deploy.docker import LABEL_TESTNET, ContainerSpec
from shakedown.images import connect, ensure_images
from shakedown.model import Images, Testnet
from shakedown.ports import free_port_base

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPUs, CPU model, memory, OS and Docker version: figures mean nothing without them."""
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), "?")
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
    engine = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                            capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({model}), {mem_kb / 2**20:.0f} GiB, "
            f"{platform.platform()}, Docker {engine}")


def timed(fn: Callable[[], Any]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def make_testnet(folder: Path, nodes: int, images: Images,
                 **extra: object) -> tuple[Testnet, Path]:
    """A fresh testnet model and its inventory file, images pinned; ``extra`` host data."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    data = {"testnet": name, "nodes": nodes, "port_base": free_port_base(nodes), **extra,
            "record_path": str(folder / name / "deployment.json"),
            "images": {"node": images.node, "anvil": images.anvil, "postgres": images.postgres,
                       "toxiproxy": images.toxiproxy}}
    inventory = folder / f"{name}.py"
    inventory.write_text(f"docker_hosts = [('@local', {data!r})]\n")
    return Testnet.from_data(data), inventory


def cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "shakedown.cli", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: shakedown {' '.join(args)} failed: {proc.stderr.strip()}")


def docker_run(spec: ContainerSpec) -> None:
    subprocess.run(spec.run_command().get_raw_value(), shell=True, check=True,
                   capture_output=True)


def floor_up(t: Testnet, images: Images) -> None:
    """The same testnet with bare docker commands and the same controller-side steps."""
    label = f"--label {LABEL_TESTNET}={t.name}"
    subprocess.run(f"docker network create {label} {t.network}", shell=True, check=True,
                   capture_output=True)
    subprocess.run(f"docker volume create {label} {db.volume_name(t)}", shell=True, check=True,
                   capture_output=True)
    for spec in (chain.chain_spec(t, images), proxy.proxy_spec(t, images), db.db_spec(t, images)):
        docker_run(spec)
    chain.deploy_and_record(t)
    db.create_databases(t)
    proxy.create_proxies(t)
    node.register(t)
    for n in t.nodes:
        docker_run(node.node_spec(t, n, images))
    docker_run(gateway.gateway_spec(t, images))
    node.wait_nodes_healthy(t)


def floor_down(t: Testnet) -> None:
    f = f"--filter label={LABEL_TESTNET}={t.name}"
    subprocess.run(f"docker rm -f -v $(docker ps -aq {f})", shell=True, check=True,
                   capture_output=True)
    subprocess.run(f"docker network rm {t.network}", shell=True, check=True, capture_output=True)
    subprocess.run(f"docker volume rm {db.volume_name(t)}", shell=True, check=True,
                   capture_output=True)


def bench(nodes: int, images: Images, folder: Path) -> dict[str, float]:
    _, inventory = make_testnet(folder, nodes, images)
    figures: dict[str, float] = {}
    try:
        figures["up"] = timed(lambda: cli("up", "-i", str(inventory)))
        figures["re-run"] = timed(lambda: cli("up", "-i", str(inventory)))
    finally:
        figures["down"] = timed(lambda: cli("down", "-i", str(inventory)))
    f, _ = make_testnet(folder, nodes, images)
    try:
        figures["floor up"] = timed(lambda: floor_up(f, images))
    finally:
        figures["floor down"] = timed(lambda: floor_down(f))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, action="append", help="node counts (default 3)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    found = ensure_images(connect(), log=lambda line: None)
    images = Images(node=found.node, anvil=found.anvil, postgres=found.postgres,
                    toxiproxy=found.toxiproxy)
    print(f"{'nodes':>5}  {'figure':<10} {'seconds':>8}  {'vs floor':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        for count in args.nodes or [3]:
            figures = bench(count, images, Path(tmp))
            for name in ("up", "re-run", "down", "floor up", "floor down"):
                floor = {"up": "floor up", "down": "floor down"}.get(name)
                ratio = f"{figures[name] / figures[floor]:.2f}x" if floor else ""
                print(f"{count:>5}  {name:<10} {figures[name]:>8.2f}  {ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
