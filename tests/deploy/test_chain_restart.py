"""A chain restart keeps the chain: anvil is the container's PID 1 with --state, so docker
stop's SIGTERM makes it dump its state and the next start loads it (server-restart)."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest
from web3 import Web3

from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.faults import Injector
from shakedown.keys import admin_account
from shakedown.model import load_inventory
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net, fresh_testnet


# It deploys a testnet: the default lane is at its budget, so it runs with the catalogue.
@pytest.mark.catalogue
def test_the_chain_keeps_its_state_across_a_stop_and_start(
        make_net: Callable[..., Net], docker_client: docker.DockerClient) -> None:
    with fresh_testnet(make_net, docker_client, "sdc") as net:
        record = net.record()
        w3 = Web3(Web3.HTTPProvider(record["chain"]["rpc"], request_kwargs={"timeout": 3}))
        chain = Chain(w3, ContractAddresses.from_dict(record["contracts"]), admin_account())
        head, canonical = w3.eth.block_number, chain.canonical_node_ids()
        container = docker_client.containers.get(f"{net.name}-chain")
        first = docker_client.api.top(container.id, ps_args="-o pid,args")["Processes"][0]
        assert first[-1].startswith("anvil "), f"the chain's first process is {first[-1]!r}"
        with Injector.for_testnet(load_inventory(net.inventory)[0]) as inj:
            entry = inj.apply("stop", "chain")
            container.reload()
            assert container.attrs["State"]["ExitCode"] != 137, "anvil was killed, not stopped"
            inj.clear(entry)
        wait_for(lambda: w3.eth.block_number, lambda n: n >= head, timeout=60, interval=0.5,
                 what="the restarted chain at its old head")
        assert chain.canonical_node_ids() == canonical
        assert len(w3.eth.get_code(record["contracts"]["node_registry"])) > 0
