"""One real testnet for the fault tests; every test leaves it without faults (checked)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest

from shakedown.faults import Injector
from shakedown.faults.inventory import read_residue
from shakedown.model import Testnet, load_inventory
from tests.deploy.testnets import Net, fresh_testnet


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(make_net, docker_client, "sdf") as net:
        yield net


@pytest.fixture(scope="module")
def testnet(net: Net) -> Testnet:
    return load_inventory(net.inventory)[0]


@pytest.fixture
def inj(testnet: Testnet) -> Iterator[Injector]:
    """An injector; after the test every fault is cleared and nothing may be left behind."""
    injector = Injector.for_testnet(testnet)
    yield injector
    injector.clear_all()
    assert read_residue(testnet) == [], "a fault test left something behind"
