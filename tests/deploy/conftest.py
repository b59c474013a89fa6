"""A real testnet on the local Docker engine, shared by the module, always torn down.

Inventories are written per testnet with the images pinned, so a source edit elsewhere in the
checkout (which retags the node image) cannot make a re-run look like drift.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from tests.deploy.testnets import Net, free_port_base, fresh_testnet, reap, write_inventory


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:  # these tests need the engine: a missing one is a failure
        pytest.fail(f"no Docker engine ({e}); start it with scripts/setup")
    return client


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient) -> dict[str, str]:
    """The image refs, built or found once for the whole session."""
    from shakedown.images import ensure_images

    found = ensure_images(docker_client, log=lambda line: None)
    return {"node": found.node, "anvil": found.anvil, "postgres": found.postgres,
            "toxiproxy": found.toxiproxy}


@pytest.fixture(scope="session")
def make_net(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str],
             docker_client: docker.DockerClient) -> Iterator[Callable[..., Net]]:
    """Write inventories for new testnets; at session end, reap whatever they left."""
    made: list[Net] = []

    def make(prefix: str = "sdt", **data: Any) -> Net:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        base = data.pop("port_base", None) or free_port_base()
        folder = tmp_path_factory.mktemp(name)
        record = folder / "deployment.json"
        host_data = {"testnet": name, "roles": ["chain", "proxy", "db", "node", "gateway"],
                     "nodes": 3, "port_base": base, "record_path": str(record),
                     "images": images, **data}
        net = Net(name, folder / "inventory.py", record, base, host_data)
        write_inventory(net, host_data)
        made.append(net)
        return net

    yield make
    for net in made:
        reap(docker_client, net.name)


@pytest.fixture(scope="module")
def testnet(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    """One testnet up for the module; ``shakedown down`` at the end, even after failures."""
    with fresh_testnet(make_net, docker_client) as net:
        yield net
