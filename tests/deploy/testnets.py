"""Helpers for the deploy tests: testnets under test, the CLI as a user runs it, leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from shakedown.deploy.docker import LABEL_TESTNET
from shakedown.deploy.record import load_record

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Net:
    """One testnet under test: its name, inventory file, record path and port base."""

    name: str
    inventory: Path
    record_path: Path
    port_base: int
    data: dict[str, Any]

    def record(self) -> dict[str, Any]:
        data = load_record(self.record_path)
        assert data is not None, f"{self.name}: no deployment record at {self.record_path}"
        return data


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``shakedown ARGS`` as a user runs it, output captured."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "shakedown.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def leftovers(client: docker.DockerClient, name: str) -> list[str]:
    """Everything on the engine that carries this testnet's label."""
    label = {"label": f"{LABEL_TESTNET}={name}"}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
            + [f"network {n.name}" for n in client.networks.list(filters=label)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=label)])


def reap(client: docker.DockerClient, name: str) -> None:
    """Remove labelled leftovers directly, for when ``shakedown down`` itself failed."""
    label = {"label": f"{LABEL_TESTNET}={name}"}
    for c in client.containers.list(all=True, filters=label):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters=label):
        n.remove()
    for v in client.volumes.list(filters=label):
        v.remove(force=True)


@contextmanager
def fresh_testnet(make: Callable[..., Net], client: docker.DockerClient,
                  prefix: str = "sdt", **data: Any) -> Iterator[Net]:
    """A new testnet up through the CLI; down and reaped at the end, even after a failure.
    Big testnets get a minute per node to come up (fifty start on the same cores)."""
    net = make(prefix, **data)
    try:
        up = run_cli("up", "-i", str(net.inventory), timeout=max(600, 60 * data.get("nodes", 3)))
        assert up.returncode == 0, f"shakedown up failed: {up.stderr or up.stdout}"
        yield net
    finally:
        run_cli("down", "-i", str(net.inventory), timeout=max(600, 20 * data.get("nodes", 3)))
        reap(client, net.name)


def write_inventory(net: Net, host_data: dict[str, Any]) -> None:
    """(Re)write the testnet's inventory: one @local Docker host with ``host_data``."""
    net.inventory.write_text(f"docker_hosts = [('@local', {host_data!r})]\n")
