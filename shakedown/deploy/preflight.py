"""Checks before anything is applied: the engine answers, the host ports are ours or free."""

from __future__ import annotations

import socket

import docker
import docker.errors

from shakedown.deploy.docker import LABEL_TESTNET
from shakedown.errors import ConfigError
from shakedown.images import connect
from shakedown.model import Testnet


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _published(client: docker.DockerClient) -> dict[int, str]:
    """Host port -> testnet label (or container name) of every published port on the engine."""
    taken: dict[int, str] = {}
    for c in client.containers.list(all=True, ignore_removed=True):  # others come and go
        owner = (c.labels or {}).get(LABEL_TESTNET) or f"container {c.name}"
        for bindings in (c.attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
            for b in bindings or []:
                if b.get("HostPort"):
                    taken[int(b["HostPort"])] = owner
    return taken


def check_ports(testnet: Testnet, client: docker.DockerClient) -> None:
    """Raise ConfigError naming the first host port someone else holds."""
    taken = _published(client)
    for service, port in testnet.ports.all().items():
        owner = taken.get(port)
        if owner == testnet.name:
            continue
        if owner is not None or not _bindable(port):
            who = f"testnet {owner}" if owner and " " not in owner else (owner or "another process")
            raise ConfigError(
                f"{testnet.name}: host port 127.0.0.1:{port} for {service} is taken by {who};"
                " choose another port_base (SHAKEDOWN_PORT_BASE)"
            )


def check_images(testnet: Testnet, client: docker.DockerClient) -> None:
    """Images the inventory names must exist: there may be no registry to pull them from."""
    images = testnet.images
    for role, ref in (("node", images.node), ("anvil", images.anvil),
                      ("postgres", images.postgres), ("toxiproxy", images.toxiproxy)):
        if not ref:
            continue
        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            raise ConfigError(
                f"{testnet.name}: {role} image {ref!r} is not on the Docker engine; build it"
                " (python -m shakedown.images) or drop images from the inventory"
            ) from None


def preflight(testnets: list[Testnet], *, ports: bool) -> docker.DockerClient:
    """The engine answers (UnreachableError otherwise); for ``up``, images exist, ports free."""
    client = connect(timeout=10)
    if ports:
        for testnet in testnets:
            check_images(testnet, client)
            if not testnet.remote_docker:  # a remote engine's ports are not ours to probe
                check_ports(testnet, client)
    return client
