"""Twenty SSH hosts (VM-like containers) as one systemd testnet, one node per host, deployed at
once: ``shakedown up`` over SSH, traffic to every node, every node holds every envelope,
``pytest verify/`` green, a second ``up`` that changes nothing, ``down`` that leaves nothing.

On request: ``pytest -m scale tests/vm/test_scale_hosts.py`` (about 5 GB of memory).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from refnode.envelopes import Signer
from shakedown.deploy.record import load_record
from shakedown.faults.ssh import Session
from shakedown.keys import payer
from shakedown.traffic import NodeTarget, Traffic
from shakedown.verify.replication import wait_converged
from shakedown.vm.sshhosts import SSHHosts

REPO = Path(__file__).resolve().parents[2]
HOSTS = 20
TESTNET = "sdscale"

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHosts]:
    with SSHHosts(count=HOSTS, run_dir=tmp_path_factory.mktemp("sdscale-hosts")) as made:
        yield made


def shakedown(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shakedown.cli", *args], capture_output=True,
                          text=True, timeout=3600, cwd=REPO)


def test_twenty_hosts_deploy_at_once_replicate_verify_and_go(hosts: SSHHosts) -> None:
    roles = [["chain", "proxy", "db", "node", "gateway"]] + [["proxy", "db", "node"]] * (HOSTS - 1)
    group = {"testnet": TESTNET, "runtime": "systemd", "nodes": HOSTS, "port_base": 26000,
             "health_timeout": 600, "record_path": str(hosts.run_dir / "deployment.json")}
    inventory = hosts.write_inventory(hosts.run_dir / "inventory.py", group,
                                      [{"roles": r} for r in roles])
    up = shakedown("up", "-i", str(inventory))
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    record = load_record(hosts.run_dir / "deployment.json")
    assert record is not None
    assert [n["host"] for n in record["nodes"]] == [h.address for h in hosts.hosts]

    stats = Traffic([NodeTarget(n["grpc"], n["node_id"]) for n in record["nodes"]], rate=0,
                    duration_s=600, max_envelopes=5 * HOSTS, batch=5, workers=2,
                    payers=[Signer(bytes(payer(0).key))], timeout=120).run()
    assert stats.acked == 5 * HOSTS, f"{stats.acked} acked; {stats.errors}"
    conns = {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=30)
             for n in record["nodes"]}
    try:
        wait_converged(conns, {n["node_id"] for n in record["nodes"]}, timeout=600)
    finally:
        for conn in conns.values():
            conn.close()

    verify = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "verify/", f"--inventory={inventory}"], capture_output=True,
                            text=True, timeout=1800, cwd=REPO)
    assert verify.returncode == 0, verify.stdout[-3000:]

    again = shakedown("up", "-i", str(inventory))
    assert again.returncode == 0 and ": 0 changed" in again.stdout, again.stdout[-2000:]

    down = shakedown("down", "-i", str(inventory))
    assert down.returncode == 0, down.stderr[-2000:]
    for h in hosts.hosts:
        with Session(h.ssh) as s:
            left = s.run(f"ls -d /etc/systemd/system/{TESTNET}-* /opt/shakedown/{TESTNET} "
                         f"/var/lib/shakedown/testnets/{TESTNET} 2>/dev/null").out.strip()
        assert not left, f"{h.name}: {left}"
