"""Time a systemd-runtime deploy over SSH onto 1, 3, 10 and 20 hosts (VM-like containers).

Usage: ``.venv/bin/python -m bench.deploy_ssh [--hosts 1 --hosts 3 ...]`` (from the repository
root, so it shares ``bench.deploy``'s machine line). For each host count N it starts N fresh SSH
hosts (the image is cached), one node per host (h1 also runs the chain and the gateway, as in
``inventories/vagrant.py``), and times through the CLI:

- ``up``: ``shakedown up`` on fresh hosts (venv from the wheelhouse, units, contracts,
  databases, proxies, registration, health), hosts at once (``pyinfra --no-wait``);
- ``re-run``: the same ``up`` with nothing to change;
- ``down``: ``shakedown down`` (units and directories removed);
- CPU used during ``up``: every host container's (cgroup v1 cpuacct) and the CLI's process
  tree's; ``up`` against that CPU spread over every core (hosts that share this machine's
  cores cannot deploy faster than their own work allows).

Floor, in the same run, on one fresh host: the same one-host testnet by hand over one SSH
session, no pyinfra: upload and unpack the same wheelhouse and anvil, initdb, write the same
unit and environment files and start them with one ``systemctl``, then the same contract
deploy, databases, proxies, registration and health waits. Prints every figure, its ratio to
the floor, and the curve: each ``up`` against the one-host ``up``, and 20 hosts against 3.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import docker

from bench.deploy import machine
from shakedown.deploy import chain, db, gateway, node, proxy, systemd
from shakedown.deploy.wheelhouse import wheelhouse
from shakedown.faults.ssh import Session
from shakedown.images.build import repo_root
from shakedown.images.context import ANVIL_BINARY
from shakedown.model import Testnet
from shakedown.vm.sshhosts import SSHHosts
from shakedown.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
FIRST = ["chain", "proxy", "db", "node", "gateway"]
OTHERS = ["proxy", "db", "node"]


def cpu_seconds(hosts: SSHHosts) -> float:
    """CPU the hosts' containers have used so far (cgroup v1 cpuacct), in seconds."""
    client = docker.from_env()
    total = 0
    for h in hosts.hosts:
        cid = client.containers.get(h.container).id
        total += int(Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage").read_text())
    return total / 1e9


def controller_cpu_seconds() -> float:
    """CPU used by this process's finished children (the CLI runs) so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(args: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "shakedown.cli", *args], capture_output=True,
                          text=True, timeout=3600, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"bench: shakedown {' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return time.monotonic() - started


def inventory(hosts: SSHHosts, name: str) -> tuple[Path, Testnet]:
    n = len(hosts.hosts)
    group = {"testnet": name, "runtime": "systemd", "nodes": n, "port_base": 26000,
             "health_timeout": 600, "record_path": str(hosts.run_dir / "record.json")}
    per_host: list[dict[str, object]] = [{"roles": FIRST if k == 0 else OTHERS} for k in range(n)]
    path = hosts.write_inventory(hosts.run_dir / "inventory.py", group, per_host)
    testnet = Testnet.from_hosts([(h.address, {**group, "address": h.address, **d})
                                  for h, d in zip(hosts.hosts, per_host, strict=True)])
    return path, testnet


def floor_up(hosts: SSHHosts) -> float:
    """One host's testnet by hand: the same files and controller steps, no pyinfra."""
    _, t = inventory(hosts, "sdfloor")
    here, wheels = t.hosts[0], wheelhouse("3.11")
    p = systemd.Paths(t.name)
    site = f"{p.venv}/lib/python{wheels.python}/site-packages"
    units = [chain.chain_unit(t), db.db_unit(t), proxy.proxy_unit(t, wheels.digest)]
    pgdata = f"{p.data}/db"
    with Session(hosts.hosts[0].ssh) as s:
        started = time.monotonic()
        sftp = s.connect().open_sftp()
        s.check(f"install -d {p.root} {p.bin} && install -d -m 0700 {p.config}")
        for layer in wheels.layers:
            sftp.put(str(layer), f"{p.root}/{layer.name}")
        sftp.put(str(repo_root() / ANVIL_BINARY), f"{p.bin}/anvil")
        unpack = " && ".join(f"tar -xzf {p.root}/{layer.name} -C {site}"
                             for layer in wheels.layers)
        s.check(f"chmod 755 {p.bin}/anvil && python3 -m venv --without-pip {p.venv} && "
                f"mkdir -p {site} && {unpack} && install -d -o postgres -m 0700 {pgdata} && "
                f"echo {shlex.quote(t.db_password)} > /tmp/pw && chown postgres /tmp/pw && "
                f"cd / && runuser -u postgres -- {systemd.PG_BIN}/initdb -D {pgdata} -U "
                "postgres --pwfile=/tmp/pw --auth-local=peer --auth-host=scram-sha-256 "
                "--no-instructions --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null && "
                f"rm /tmp/pw && echo 'host all all 0.0.0.0/0 scram-sha-256' >> "
                f"{pgdata}/pg_hba.conf", timeout=900)
        start(s, sftp, units)
        chain.deploy_and_record(t)
        node.register(t)
        db.create_databases(t, here)
        proxy.create_proxies(t, here)
        start(s, sftp, [node.node_unit(t, n, wheels.digest) for n in t.nodes])
        wait_for(lambda: node.nodes_healthy(t), bool, timeout=600, what="floor nodes")
        start(s, sftp, [gateway.gateway_unit(t, here, wheels.digest)])
        gateway.wait_gateway_healthy(t)
        took = time.monotonic() - started
        s.check(f"systemctl stop '{t.name}-*' ; rm -rf {p.root} {p.config} {p.data} "
                f"/etc/systemd/system/{t.name}-*; systemctl daemon-reload")
    return took


def start(s: Session, sftp: object, specs: list[systemd.UnitSpec]) -> None:
    """Write the units' environment and unit files, then start them all with one systemctl."""
    for spec in specs:
        sftp.putfo(BytesIO(spec.env_text().encode()), spec.env_file)  # type: ignore[attr-defined]
        sftp.putfo(BytesIO(spec.unit_text().encode()),  # type: ignore[attr-defined]
                   f"{systemd.UNIT_DIR}/{spec.name}")
    s.check(f"chmod 0600 {' '.join(spec.env_file for spec in specs)} && systemctl "
            f"daemon-reload && systemctl start {' '.join(spec.name for spec in specs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append",
                        help="host counts (default 1, 3, 10, 20)")
    args = parser.parse_args()
    counts = args.hosts or [1, 3, 10, 20]
    print(f"machine: {machine()}")
    started = time.monotonic()
    wheels = wheelhouse("3.11")
    size = sum(layer.stat().st_size for layer in wheels.layers) >> 20
    print(f"wheelhouse: {time.monotonic() - started:.1f} s ({size} MB; cached after)")
    with SSHHosts(count=1) as one:
        floor = floor_up(one)
    print(f"floor: one host by hand {floor:.1f} s")
    ups: dict[int, float] = {}
    cores = os.cpu_count() or 1
    print(f"{'hosts':>5}  {'up':>7} {'re-run':>7} {'down':>7}  {'up/floor':>8} {'up/up(1)':>8}"
          f"  {'CPU used':>8} {'up/CPU floor':>12}")
    for n in counts:
        with SSHHosts(count=n) as hosts:
            path, _ = inventory(hosts, "sdbench")
            before = cpu_seconds(hosts) + controller_cpu_seconds()
            up = ups[n] = timed(["up", "-i", str(path)])
            # the work itself, every host's and the controller's, spread over every core
            cpu = cpu_seconds(hosts) + controller_cpu_seconds() - before
            again = timed(["up", "-i", str(path)])
            down = timed(["down", "-i", str(path)])
        vs_one = f"{up / ups[1]:.2f}x" if 1 in ups else "-"
        print(f"{n:>5}  {up:6.1f}s {again:6.1f}s {down:6.1f}s  {up / floor:7.2f}x {vs_one:>8}"
              f"  {cpu:7.1f}s {up / (cpu / cores):11.2f}x", flush=True)
    if 3 in ups and 20 in ups:
        print(f"20 hosts / 3 hosts: {ups[20] / ups[3]:.2f}x")


if __name__ == "__main__":
    main()
