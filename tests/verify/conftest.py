"""A real testnet with traffic for the verify suite's own tests; always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from shakedown.waiting import wait_for
from tests.deploy.testnets import Net
from tests.verify.nets import (
    REPORTS_EVERY_2S,
    all_settled,
    converged,
    fresh_testnet,
    gateway_ready,
    send_traffic,
)
from tests.verify.suite import Summary, run_suite


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient
        ) -> Iterator[Net]:
    """A testnet holding traffic from every node and the gateway, converged and settled.

    Settled first: corruptions that snapshot and revert the chain (``corrupt.rates_from``)
    would otherwise revert a settlement a node made meanwhile, and the nodes' databases would
    name reports the chain no longer holds."""
    with fresh_testnet(lambda _prefix: make_net("sdv", node_env=REPORTS_EVERY_2S),
                       docker_client) as up:
        gateway_ready(up)
        send_traffic(up)
        converged(up)
        wait_for(lambda: all_settled(up), bool, timeout=120, interval=1,
                 what=f"{up.name}: every originator's envelopes settled")
        yield up


@pytest.fixture
def verify(net: Net, tmp_path: Path) -> Callable[..., Summary]:
    """Run the suite against ``net``: ``verify("-m", "chain")``."""
    return lambda *args, **kw: run_suite(net, tmp_path, *args, **kw)
