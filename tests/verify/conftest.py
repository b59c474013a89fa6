"""A real testnet with traffic for the verify suite's own tests; always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.deploy.testnets import Net
from tests.verify.nets import converged, fresh_testnet, gateway_ready, send_traffic
from tests.verify.suite import Summary, run_suite


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient
        ) -> Iterator[Net]:
    """A testnet holding traffic from every node and the gateway, converged."""
    with fresh_testnet(make_net, docker_client) as up:
        gateway_ready(up)
        send_traffic(up)
        converged(up)
        yield up


@pytest.fixture
def verify(net: Net, tmp_path: Path) -> Callable[..., Summary]:
    """Run the suite against ``net``: ``verify("-m", "chain")``."""
    return lambda *args, **kw: run_suite(net, tmp_path, *args, **kw)
