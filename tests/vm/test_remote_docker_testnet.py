"""The docker runtime on a remote Docker host (``@ssh``): a fresh VM-like container becomes a
Docker host (deploy/docker_host.py), then ``shakedown up`` runs the whole testnet there over
SSH, carrying the images (no registry); the controller reaches it at the host's address,
``pytest verify/ --inventory`` passes, and ``shakedown down`` leaves no container behind."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shakedown.deploy.record import load_record
from shakedown.faults.ssh import Session
from shakedown.vm.sshhosts import SSHHosts

REPO = Path(__file__).resolve().parents[2]
TESTNET = "sdremote"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHosts]:
    with SSHHosts(count=1, run_dir=tmp_path_factory.mktemp("sdremote")) as made:
        yield made


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=1200, cwd=REPO)


@pytest.mark.long
def test_a_testnet_deploys_onto_a_remote_docker_host_and_verifies(
        host: SSHHosts, images: dict[str, str]) -> None:
    vm = host.hosts[0]
    record_path = host.run_dir / "deployment.json"
    inventory = host.write_inventory(host.run_dir / "inventory.py", {
        "testnet": TESTNET, "roles": ["chain", "proxy", "db", "node", "gateway"], "nodes": 3,
        "port_base": 26500, "images": images, "record_path": str(record_path)})
    started = time.monotonic()
    engine = run("pyinfra", "-y", str(inventory), "deploy/docker_host.py")
    assert engine.returncode == 0, engine.stdout[-2000:]
    up = run("shakedown.cli", "up", "-i", str(inventory))
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-1000:]
    print(f"docker host + images + up over SSH: {time.monotonic() - started:.1f} s")
    record = load_record(record_path)
    assert record and record["nodes"][0]["grpc"] == f"{vm.address}:26510"
    with Session(vm.ssh) as s:  # the containers run there, not here
        names = s.check(f"docker ps --filter label=shakedown.testnet={TESTNET} "
                        "--format '{{.Names}}'").split()
    assert sorted(names) == sorted(f"{TESTNET}-{s}" for s in (
        "chain", "proxy", "db", "node-100", "node-200", "node-300", "gateway"))
    verify = run("pytest", "-q", "-p", "no:cacheprovider", "verify/", f"--inventory={inventory}")
    assert verify.returncode == 0, verify.stdout[-3000:]
    again = run("shakedown.cli", "up", "-i", str(inventory))
    assert again.returncode == 0 and ": 0 changed" in again.stdout, again.stdout[-2000:]
    down = run("shakedown.cli", "down", "-i", str(inventory))
    assert down.returncode == 0, down.stderr[-2000:]
    with Session(vm.ssh) as s:
        left = s.check(f"docker ps -aq --filter label=shakedown.testnet={TESTNET}; "
                       f"docker network ls -q --filter label=shakedown.testnet={TESTNET}; "
                       f"docker volume ls -q --filter label=shakedown.testnet={TESTNET}")
    assert not left.strip(), left
