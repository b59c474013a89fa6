"""A real testnet on the local Docker engine, shared by the module, always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest

from tests.deploy.testnets import Net, fresh_testnet


@pytest.fixture(scope="module")
def testnet(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    """One testnet up for the module; ``shakedown down`` at the end, even after failures."""
    with fresh_testnet(make_net, docker_client) as net:
        yield net
