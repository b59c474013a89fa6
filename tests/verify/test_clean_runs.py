"""No false alarms: on a fresh testnet after traffic, a fault and its healing, the verify suite
passes five runs in a row.

Steps: up -> traffic from every node and the gateway -> node-300 blackholed (cut off from its
peers and the gateway) while nodes 100 and 300 take more traffic -> the fault cleared -> more
traffic -> five suite runs with the default settle window, each opening every envelope
afresh (no kept verdicts); the first has to wait for node-300 to catch up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from refnode.envelopes import Signer
from shakedown.faults import Injector
from shakedown.keys import payer
from shakedown.model import load_inventory
from shakedown.traffic import NodeTarget, Traffic
from tests.deploy.testnets import Net
from tests.verify.nets import fresh_testnet, gateway_ready, send_traffic
from tests.verify.suite import run_suite


@pytest.fixture(scope="module")
def healed(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(make_net, docker_client) as net:
        gateway_ready(net)
        send_traffic(net, 300)
        injector = Injector.for_testnet(load_inventory(net.inventory)[0])
        try:
            injector.apply("blackhole", "node-300")
            nodes = {n["node_id"]: n["grpc"] for n in net.record()["nodes"]}
            during = Traffic([NodeTarget(nodes[100], 100), NodeTarget(nodes[300], 300)], rate=0,
                             max_envelopes=300, batch=50, payers=[Signer(bytes(payer(0).key))],
                             timeout=30).run()
            assert during.acked == 300, during.errors
        finally:
            injector.clear_all()
        send_traffic(net, 300)
        yield net


@pytest.mark.long
def test_five_runs_in_a_row_pass(healed: Net, tmp_path: Path) -> None:
    for run in range(5):
        result = run_suite(healed, tmp_path, "--envelope-cache=off", settle=30)
        assert result.process.returncode == 0 and result.failed() == set(), (
            f"run {run + 1}:\n{result.process.stdout[-3000:]}")
        assert len(result.checks) == 37  # ten per node, seven of the testnet
