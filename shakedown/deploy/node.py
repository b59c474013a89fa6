"""The node role: register each node on-chain at its proxy address, then run refnode (a
container per node, or a unit per node on its host)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from functools import partial

from pyinfra.api import deploy

from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.deploy import docker, record, systemd
from shakedown.deploy.chain import contracts_ready, web3_for
from shakedown.deploy.db import databases_present
from shakedown.deploy.docker import ContainerSpec
from shakedown.deploy.steps import after, step
from shakedown.errors import TimeoutExpired, UnreachableError
from shakedown.keys import admin_account, key_hex, node_owner, node_signer
from shakedown.model import NODE_PORT, HostModel, Images, NodeModel, Testnet
from shakedown.waiting import wait_for


def contracts_of(testnet: Testnet) -> dict[str, str]:
    """The recorded contract addresses; empty before the chain role ran (plan time)."""
    data = record.load_record(testnet.record_path) or {}
    return data.get("contracts") or {}


Env = tuple[tuple[str, str], ...]


def node_env(testnet: Testnet, node: NodeModel, listen: int) -> tuple[Env, Env]:
    """refnode's settings and secrets: its own database, the chain, the recorded contracts."""
    contracts = contracts_of(testnet)
    db = testnet.db_address_internal(node)
    dsn = f"postgresql://postgres:{testnet.db_password}@{db}/{node.database}"
    here = testnet.host_of(node) if testnet.on_hosts else None
    env = (
        ("REFNODE_CHAIN_RPC", testnet.chain_rpc_internal(here)),
        ("REFNODE_NODE_REGISTRY", contracts.get("node_registry", "")),
        ("REFNODE_RATE_REGISTRY", contracts.get("rate_registry", "")),
        ("REFNODE_PAYER_REPORT_MANAGER", contracts.get("payer_report_manager", "")),
        ("REFNODE_LISTEN", f"0.0.0.0:{listen}"),
        ("REFNODE_NODE_ID", str(node.node_id)),
        *_scale_env(testnet),
        *node.env,
    )
    secrets = (("REFNODE_SIGNER_KEY", key_hex(node_signer(node.index))), ("REFNODE_DB_DSN", dsn))
    return env, secrets


def _scale_env(testnet: Testnet) -> Env:
    """Beyond 10 nodes every node reads the whole registry less often (every n/5 seconds: 10 s
    at 50 nodes): n nodes reading n entries every 2 s is n^2 work on the chain and on the nodes
    that would keep two cores busy at 50 nodes. Membership changes then take that long to be
    seen. An inventory's node_env still wins.

    Each node keeps its pool of checker processes even when nodes outnumber the cores: 50
    nodes with ``REFNODE_CHECK_WORKERS=1`` (about half the memory) never all became healthy
    here, their peers' keepalive pings timing out while the event loops opened envelopes."""
    if len(testnet.nodes) <= 10:
        return ()
    return (("REFNODE_REGISTRY_REFRESH_S", f"{len(testnet.nodes) / 5:g}"),)


def node_spec(testnet: Testnet, node: NodeModel, images: Images,
              host_port: int | None = None) -> docker.ContainerSpec:
    """refnode in a container on the testnet's network.

    ``host_port`` defaults to the inventory's port for the node (churn picks a free one)."""
    env, secrets = node_env(testnet, node, NODE_PORT)
    return docker.ContainerSpec(
        testnet=testnet.name, service=node.name, image=images.node, network=testnet.network,
        command=("refnode",), env=env, secret_env=secrets,
        ports=((host_port or testnet.ports.nodes[node.index], NODE_PORT),),
        bind=testnet.address,
    )


def node_unit(testnet: Testnet, node: NodeModel, build: str) -> systemd.UnitSpec:
    """refnode from the host's virtualenv on the node's own port; ``build`` restarts it."""
    env, secrets = node_env(testnet, node, testnet.ports.nodes[node.index])
    python = f"{systemd.Paths(testnet.name).venv}/bin/python"
    return systemd.UnitSpec(testnet.name, node.name, (python, "-m", "refnode.node"),
                            env=(*env, ("SHAKEDOWN_BUILD", build)), secret_env=secrets)


def grpc_endpoint(testnet: Testnet, node: NodeModel) -> str:
    """Where the controller reaches a node's gRPC."""
    host = testnet.host_of(node) if testnet.on_hosts else None
    return f"{testnet.reach(host)}:{testnet.ports.nodes[node.index]}"


def _chain(testnet: Testnet, timeout: float = 2.0) -> Chain:
    addresses = ContractAddresses.from_dict(contracts_of(testnet))
    return Chain(web3_for(testnet, timeout), addresses, admin_account())


def registered(testnet: Testnet) -> bool:
    """Every node is on-chain with its signer, its proxy address, and canonical."""
    chain = _chain(testnet)
    by_id = {n.node_id: n for n in chain.all_nodes()}
    for node in testnet.nodes:
        have = by_id.get(node.node_id)
        if (have is None or have.signer != node_signer(node.index).address
                or have.http_address != testnet.node_address(node) or not have.is_canonical):
            return False
    return True


def register(testnet: Testnet) -> None:
    """Register missing nodes in index order (ids follow), fix addresses, add to the network."""
    chain = _chain(testnet, timeout=30.0)
    by_id = {n.node_id: n for n in chain.all_nodes()}
    for node in testnet.nodes:
        address = testnet.node_address(node)
        have = by_id.get(node.node_id)
        if have is None:
            got = chain.register_node(node_owner(node.index).address,
                                      node_signer(node.index).address, address)
            if got != node.node_id:
                raise RuntimeError(f"{node.name}: the registry assigned id {got}")
            chain.add_to_network(got)
            continue
        if have.http_address != address:
            chain.set_http_address(node.node_id, address)
        if not have.is_canonical:
            chain.add_to_network(node.node_id)


def _healthy(endpoint: str) -> bool:
    """True when the node answers; a one-line UnreachableError (code, details) otherwise."""
    import grpc

    from shakedown.client import NodeClient

    with NodeClient(endpoint, timeout=2.0) as client:
        try:
            client.health()
        except grpc.RpcError as e:
            raise UnreachableError(f"{e.code().name}: {e.details()}") from None  # type: ignore[attr-defined]
        return True


def nodes_healthy(testnet: Testnet, nodes: tuple[NodeModel, ...] | None = None) -> bool:
    return all(_healthy(grpc_endpoint(testnet, n))
               for n in (testnet.nodes if nodes is None else nodes))


def wait_nodes_healthy(testnet: Testnet) -> None:
    """Every node answers gRPC health; on timeout say what its container last logged."""
    for node in testnet.nodes:
        wait_node_healthy(testnet.container(node.name), grpc_endpoint(testnet, node),
                          testnet.health_timeout)


def wait_node_healthy(container: str, endpoint: str, timeout: float) -> None:
    """One node answers gRPC health at ``endpoint``; TimeoutExpired with its log tail."""
    try:
        wait_for(partial(_healthy, endpoint), bool, timeout=timeout, interval=0.3,
                 what=f"{container} gRPC health")
    except TimeoutExpired as e:
        raise TimeoutExpired(f"{e}; log tail: {log_tail(container)}") from e


def log_tail(container: str, lines: int = 3) -> str:
    """The container's last log lines joined by " | " (for error messages)."""
    proc = subprocess.run(["docker", "logs", "--tail", str(lines), container],
                          capture_output=True, text=True, timeout=10)
    text = list(dict.fromkeys((proc.stdout + proc.stderr).strip().splitlines()))  # distinct
    return " | ".join(text[-lines:]) or "(empty)"


def _spec_later(testnet: Testnet, node: NodeModel, images: Images) -> Callable[[], ContainerSpec]:
    """The node's spec, built when the operation runs (after the chain role wrote the record)."""
    return partial(node_spec, testnet, node, images)


def registration(testnet: Testnet) -> None:
    step(name=f"{testnet.name}: nodes registered on-chain", what="registration",
         done=lambda: registered(testnet), action=lambda: register(testnet))


@deploy("node")
def nodes(testnet: Testnet, images: Images) -> None:
    registration(testnet)
    for node in testnet.nodes:
        docker.container(name=f"{testnet.name}: {node.name} container",
                         spec=_spec_later(testnet, node, images))
    step(name=f"{testnet.name}: nodes healthy", what="health",
         done=lambda: nodes_healthy(testnet), action=lambda: wait_nodes_healthy(testnet))


PEER_WAIT_S = 900  # for another host's work; cut short when a host of the run fails


@deploy("node units")
def nodes_on_host(testnet: Testnet, here: HostModel, build: str) -> None:
    """Each host runs its own nodes, once the contracts (their settings) and their databases
    (perhaps on another host) exist; registration runs once, from the chain's host."""
    mine = testnet.nodes_on(here)
    if not mine:
        return
    after(name=f"{testnet.name}: contracts for {here.name}'s nodes", timeout=PEER_WAIT_S,
          what=f"{here.name}: the contracts deployed from {testnet.role_host('chain').name}",
          ready=lambda: contracts_ready(testnet))
    db_hosts = list(dict.fromkeys(testnet.db_host(n) for n in mine))
    after(name=f"{testnet.name}: databases for {here.name}'s nodes", timeout=PEER_WAIT_S,
          what=f"{here.name}: node databases on {', '.join(h.name for h in db_hosts)}",
          ready=lambda: all(databases_present(testnet, h) for h in db_hosts))
    for node in mine:
        systemd.unit(name=f"{testnet.name}: {node.name} unit",
                     spec=partial(node_unit, testnet, node, build))
    step(name=f"{testnet.name}: nodes healthy", what="health",
         done=lambda: nodes_healthy(testnet, mine), action=lambda: _wait_on(testnet, mine))


def _wait_on(testnet: Testnet, mine: tuple[NodeModel, ...]) -> None:
    for node in mine:
        wait_for(partial(_healthy, grpc_endpoint(testnet, node)), bool,
                 timeout=testnet.health_timeout, interval=0.3,
                 what=f"{testnet.unit(node.name)} gRPC health on {node.host}")
