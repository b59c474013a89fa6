"""Time a systemd-runtime deploy over SSH onto 3 hosts (VM-like containers), phase by phase.

Usage: ``.venv/bin/python -m bench.deploy_ssh [--rounds 1]`` (from the repository root, so it
shares ``bench.deploy``'s machine line). Each round starts 3 fresh SSH
hosts (the image is cached), then times through the CLI:

- ``wheelhouse``: building the project's wheels for the hosts (cached after the first round);
- ``up``: ``shakedown up`` on fresh hosts (venv from the wheelhouse, units, contracts,
  databases, proxies, registration, health), over paramiko SSH;
- ``re-run``: the same ``up`` with nothing to change;
- ``down``: ``shakedown down`` (units and directories removed).

The floor for ``up`` is its slowest single step measured in the same run: creating the venv
from the wheelhouse on one host by hand (the deploy does it on all three at once).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.deploy import machine
from shakedown.deploy.wheelhouse import wheelhouse
from shakedown.faults.ssh import Session
from shakedown.vm.sshhosts import SSHHosts

REPO = Path(__file__).resolve().parents[1]
ROLES = [["chain", "proxy", "db", "node", "gateway"], ["proxy", "db", "node"],
         ["proxy", "db", "node"]]


def timed(args: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "shakedown.cli", *args], capture_output=True,
                          text=True, timeout=1800, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"bench: shakedown {' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return time.monotonic() - started


def venv_floor(hosts: SSHHosts, wheels_path: Path) -> float:
    """One venv from the same wheelhouse on one host, by hand: upload, unpack, pip install."""
    with Session(hosts.hosts[2].ssh) as s:
        started = time.monotonic()
        sftp = s.connect().open_sftp()
        sftp.put(str(wheels_path), "/var/tmp/floor.tar")
        s.check("rm -rf /var/tmp/floor && mkdir /var/tmp/floor && tar -xf /var/tmp/floor.tar "
                "-C /var/tmp/floor && python3 -m venv /var/tmp/floor/venv && /var/tmp/floor/"
                "venv/bin/pip install -q --no-index --find-links /var/tmp/floor web3 grpcio "
                "psycopg-pool 'psycopg[binary]' coincurve && rm -rf /var/tmp/floor*",
                timeout=900)
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    started = time.monotonic()
    wheels = wheelhouse("3.11")
    print(f"wheelhouse: {time.monotonic() - started:.1f} s ({wheels.path.stat().st_size >> 20}"
          " MB)")
    figures: dict[str, list[float]] = {"up": [], "re-run": [], "down": [], "venv floor": []}
    for _ in range(args.rounds):
        with SSHHosts(count=3) as hosts:
            group = {"testnet": "sdbench", "runtime": "systemd", "nodes": 3,
                     "port_base": 26000, "record_path": str(hosts.run_dir / "record.json")}
            inventory = hosts.write_inventory(hosts.run_dir / "inventory.py", group,
                                              [{"roles": r} for r in ROLES])
            figures["venv floor"].append(venv_floor(hosts, wheels.path))
            figures["up"].append(timed(["up", "-i", str(inventory)]))
            figures["re-run"].append(timed(["up", "-i", str(inventory)]))
            figures["down"].append(timed(["down", "-i", str(inventory)]))
    floor = statistics.median(figures["venv floor"])
    for name, values in figures.items():
        value = statistics.median(values)
        print(f"{name:>10}: {value:6.1f} s median of {len(values)}  ({value / floor:.1f}x the "
              "one-host venv floor)")


if __name__ == "__main__":
    main()
