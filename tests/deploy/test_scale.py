"""Many nodes on one Docker host, through the README's commands: ``shakedown up`` from an
inventory that says ``nodes: N``, traffic to every node, every node holds every envelope,
``shakedown status`` lists all N, ``pytest verify/`` is green, ``shakedown down`` leaves nothing.

Ten nodes in every run; fifty on request (``pytest -m scale tests/deploy/test_scale.py``:
about 5 GB of memory and, on two cores, 15-30 minutes).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import docker
import psycopg
import pytest

from refnode.envelopes import Signer
from shakedown.keys import payer
from shakedown.traffic import NodeTarget, Traffic
from shakedown.verify.replication import wait_converged
from shakedown.waiting import wait_for
from tests.deploy.testnets import REPO, Net, fresh_testnet, leftovers, run_cli


def _whole(net: Net, docker_client: docker.DockerClient, nodes: int) -> None:
    record = net.record()
    assert [n["node_id"] for n in record["nodes"]] == [100 * (k + 1) for k in range(nodes)]
    stats = Traffic([NodeTarget(n["grpc"], n["node_id"]) for n in record["nodes"]], rate=0,
                    duration_s=600, max_envelopes=5 * nodes, batch=5, workers=2,
                    payers=[Signer(bytes(payer(0).key))], timeout=120).run()
    assert stats.acked == 5 * nodes, f"{stats.acked} of {5 * nodes} acked; {stats.errors}"
    conns = {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=30)
             for n in record["nodes"]}
    try:  # every node holds every node's envelopes: n x (n - 1) subscriptions at work
        states = wait_converged(conns, {n["node_id"] for n in record["nodes"]}, timeout=900)
    finally:
        for conn in conns.values():
            conn.close()
    assert {s.clock.get(100, 0) for s in states.values()} == {5}

    def answering() -> tuple[int, list[str]]:  # each probe gets 2 s: at load 20, ask again
        status = run_cli("status", "-i", str(net.inventory))
        rows = [line.split() for line in status.stdout.splitlines()[2:]]
        return status.returncode, [r[0] for r in rows if r[0].startswith("node-") and r[3] == "ok"]

    wait_for(answering, lambda got: got[0] == 0 and len(got[1]) == nodes, timeout=300,
             interval=5, what=f"shakedown status: exit 0 with all {nodes} nodes ok")

    verify = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "verify/", f"--inventory={net.inventory}"], capture_output=True,
                            text=True, timeout=1800, cwd=REPO)
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert "failed" not in verify.stdout.splitlines()[-1], verify.stdout[-1000:]

    down = run_cli("down", "-i", str(net.inventory))
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_client, net.name) == []


def test_ten_nodes_deploy_replicate_verify_and_go(make_net: Callable[..., Net],
                                                  docker_client: docker.DockerClient) -> None:
    with fresh_testnet(make_net, docker_client, "sdx", nodes=10, health_timeout=300) as net:
        _whole(net, docker_client, 10)


@pytest.mark.scale
def test_fifty_nodes_deploy_replicate_verify_and_go(make_net: Callable[..., Net],
                                                    docker_client: docker.DockerClient) -> None:
    # Fifty nodes on 2 cores run at a load of 20-25: a node's 3 s deadline for a keepalive
    # answer (REFNODE_KEEPALIVE_S=5) then drops healthy clients mid-publish (GOAWAY
    # ping_timeout, 5 of 250 publishes lost on 2026-12-04); 30 s gives them 18 s.
    patient = {100 * (k + 1): {"REFNODE_KEEPALIVE_S": "30"} for k in range(50)}
    with fresh_testnet(make_net, docker_client, "sdx", nodes=50, health_timeout=900,
                       node_env=patient) as net:
        _whole(net, docker_client, 50)
