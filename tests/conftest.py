"""Fixtures every integration test shares, and the lanes that run only when asked for.

Testnet inventories are written per testnet with the images pinned, so a source edit elsewhere
in the checkout (which retags the node image) cannot make a re-run look like drift.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from shakedown.ports import free_port_base
from tests.deploy.testnets import Net, reap, write_inventory

# Marked tests that take many minutes: deselected unless ``-m`` names their marker. Done here
# rather than with ``-m`` in addopts, which would also reach the verify suite (its ``-m``
# selects check groups) when a scenario run starts it from this checkout.
ON_REQUEST = ("catalogue", "vm", "scale", "long")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    named = set(re.findall(r"[\w-]+", config.getoption("markexpr") or ""))
    skipped = [m for m in ON_REQUEST if m not in named]
    keep = [item for item in items
            if not any(item.get_closest_marker(m) for m in skipped)]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


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
        base = data.pop("port_base", None) or free_port_base(int(data.get("nodes", 3)))
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
