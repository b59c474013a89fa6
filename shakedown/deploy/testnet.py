"""The whole testnet: on a Docker host (network, then chain, proxy, db, nodes, gateway as
containers), or over SSH hosts (packages, the project's virtualenv, then each role the host
carries as systemd units).

Hosts provision at once: ``shakedown up`` runs pyinfra with ``--no-wait``, so each host goes
through its own operations without waiting for the slowest host at every one. Only the true
dependencies order work across hosts, as explicit waits (``steps.after``): units that name the
contracts wait for the chain's host to announce them, nodes wait for their databases; a node
answers once the chain's host registered it. Without ``--no-wait`` pyinfra's order (every
operation on every host before the next) holds them as well."""

from __future__ import annotations

from typing import Any

from pyinfra.api import deploy

from shakedown.deploy import docker, record, systemd
from shakedown.deploy.chain import chain, chain_on_host
from shakedown.deploy.db import db, db_on_host
from shakedown.deploy.gateway import gateway, gateway_on_host
from shakedown.deploy.images import images_for
from shakedown.deploy.node import nodes, nodes_on_host, registration
from shakedown.deploy.proxy import proxy, proxy_on_host
from shakedown.deploy.steps import step
from shakedown.errors import ConfigError
from shakedown.model import Images, Testnet

ROLE_DEPLOYS: dict[str, Any] = {
    "chain": chain, "proxy": proxy, "db": db, "node": nodes, "gateway": gateway,
}
# What a host needs from its distribution for the roles it carries, and for host faults.
PACKAGES = {
    "base": ["python3", "iproute2", "iptables", "conntrack", "libfaketime", "procps"],
    "db": ["postgresql"],
    "venv": ["python3-venv"],
}
PYTHON_ROLES = {"proxy", "node", "gateway"}  # they run from the project's virtualenv


@deploy("network")
def network(testnet: Testnet) -> None:
    docker.network(name=f"{testnet.name}: network", testnet=testnet.name,
                   network_name=testnet.network)


def run_role(role: str, testnet: Testnet, images: Images | None = None) -> None:
    """Deploy one role of ``testnet`` (its network, or its host's packages and virtualenv,
    first, so roles also run alone)."""
    if testnet.on_hosts:
        _on_host(testnet, only=role)
        return
    network(testnet=testnet)
    ROLE_DEPLOYS[role](testnet, images or images_for(testnet))


@deploy("testnet")
def testnet_up(testnet: Testnet) -> None:
    """Every role of the host's data in deploy order."""
    if testnet.on_hosts:
        _on_host(testnet)
        return
    images = images_for(testnet)
    if testnet.remote_docker:  # no registry: the images travel from here (docker save/load)
        from shakedown.deploy.docker_host import image

        for ref in dict.fromkeys((images.anvil, images.postgres, images.node, images.toxiproxy)):
            if ref:
                image(name=f"{testnet.name}: image {ref}", ref=ref)
    network(testnet=testnet)
    for role in testnet.roles:
        ROLE_DEPLOYS[role](testnet, images)


def _on_host(testnet: Testnet, only: str | None = None) -> None:
    """The roles of the host pyinfra is running this for (systemd runtime), or just ``only``."""
    from pyinfra import host

    from shakedown.deploy.wheelhouse import wheelhouse

    here = testnet.host(host.name)
    roles = {r for r in here.roles if only in (None, r)}
    packages = PACKAGES["base"] + (PACKAGES["db"] if "db" in roles else []) + \
        (PACKAGES["venv"] if roles & PYTHON_ROLES else [])
    systemd.packages(name=f"{testnet.name}: packages", names=packages)
    # The chain and the registrations first: every other host's nodes wait on them.
    if "chain" in roles:
        chain_on_host(testnet=testnet)
    if here.has("chain") and only in (None, "node"):
        registration(testnet)
    build = ""
    if roles & PYTHON_ROLES:
        python = host.get_fact(systemd.HostPython)
        if not python:
            raise ConfigError(f"{host.name}: no python3 answers; install Debian's python3 there")
        wheels = wheelhouse(python)
        systemd.venv(name=f"{testnet.name}: virtualenv", testnet=testnet.name, wheels=wheels)
        build = wheels.digest
    if "db" in roles:
        db_on_host(testnet=testnet, here=here)
    if "proxy" in roles:
        proxy_on_host(testnet=testnet, here=here, build=build)
    if "node" in roles:
        nodes_on_host(testnet=testnet, here=here, build=build)
    if "gateway" in roles:
        gateway_on_host(testnet=testnet, here=here, build=build)


@deploy("teardown")
def testnet_down(testnet: Testnet) -> None:
    """Remove exactly this testnet's containers or units, networks, volumes and its record."""
    if testnet.on_hosts:
        systemd.remove_testnet(name=f"{testnet.name}: units and directories",
                               testnet=testnet.name)
    else:
        docker.remove_testnet(name=f"{testnet.name}: containers, networks, volumes",
                              testnet=testnet.name)
    step(name=f"{testnet.name}: deployment record", what="record",
         done=lambda: not testnet.record_path.exists(),
         action=lambda: record.remove_record(testnet.record_path))
