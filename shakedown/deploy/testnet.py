"""The whole testnet on one Docker host: network, then chain, proxy, db, nodes, gateway."""

from __future__ import annotations

from typing import Any

from pyinfra.api import deploy

from shakedown.deploy import docker, record
from shakedown.deploy.chain import chain
from shakedown.deploy.db import db
from shakedown.deploy.gateway import gateway
from shakedown.deploy.images import images_for
from shakedown.deploy.node import nodes
from shakedown.deploy.proxy import proxy
from shakedown.deploy.steps import step
from shakedown.model import Images, Testnet

ROLE_DEPLOYS: dict[str, Any] = {
    "chain": chain, "proxy": proxy, "db": db, "node": nodes, "gateway": gateway,
}


@deploy("network")
def network(testnet: Testnet) -> None:
    docker.network(name=f"{testnet.name}: network", testnet=testnet.name,
                   network_name=testnet.network)


def run_role(role: str, testnet: Testnet, images: Images | None = None) -> None:
    """Deploy one role of ``testnet`` (its network first, so roles also run alone)."""
    network(testnet=testnet)
    ROLE_DEPLOYS[role](testnet, images or images_for(testnet))


@deploy("testnet")
def testnet_up(testnet: Testnet) -> None:
    """Every role of the host's data in deploy order."""
    images = images_for(testnet)
    network(testnet=testnet)
    for role in testnet.roles:
        ROLE_DEPLOYS[role](testnet, images)


@deploy("teardown")
def testnet_down(testnet: Testnet) -> None:
    """Remove exactly this testnet's containers, networks, volumes and its record."""
    docker.remove_testnet(name=f"{testnet.name}: containers, networks, volumes",
                          testnet=testnet.name)
    step(name=f"{testnet.name}: deployment record", what="record",
         done=lambda: not testnet.record_path.exists(),
         action=lambda: record.remove_record(testnet.record_path))
