"""Churn: a node with a fresh identity joins a running testnet (register, database, proxies,
container), and its undo takes it out again (out of the canonical network, removed).

    add_node(testnet, record)   # -> the new node's id; its undo steps come from undo_add
"""

from __future__ import annotations

from typing import Any

import psycopg

from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.deploy.db import admin_dsn
from shakedown.deploy.images import images_for
from shakedown.deploy.node import node_spec, wait_node_healthy
from shakedown.errors import FaultError
from shakedown.keys import admin_account, node_owner, node_signer
from shakedown.model import (
    MAX_NODES,
    NODE_ID_STEP,
    NODE_PORT,
    POSTGRES_PORT,
    NodeModel,
    Testnet,
)
from shakedown.ports import free_port
from shakedown.toxiproxy import ToxiproxyClient


def next_node(testnet: Testnet, record: dict[str, Any]) -> NodeModel:
    """The node the registry will create next: index = nodes registered so far."""
    chain = _chain(record)
    index = len(chain.all_nodes())
    if index >= MAX_NODES:
        raise FaultError(f"churn-add: the key pool holds {MAX_NODES} node identities; "
                         "all are used")
    return NodeModel(index, (index + 1) * NODE_ID_STEP)


def add_node(testnet: Testnet, record: dict[str, Any], node: NodeModel) -> None:
    """Register ``node``, give it a database and proxies, start it and wait for health."""
    chain = _chain(record)
    got = chain.register_node(node_owner(node.index).address, node_signer(node.index).address,
                              f"proxy:{node.proxy_port}")
    if got != node.node_id:
        raise FaultError(f"churn-add: the registry assigned id {got}, expected {node.node_id}")
    with psycopg.connect(admin_dsn(testnet), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (node.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{node.database}"')
    api = ToxiproxyClient(record["proxy"]["api"])
    api.create_proxy(node.name, f"0.0.0.0:{node.proxy_port}", f"{node.name}:{NODE_PORT}")
    api.create_proxy(node.db_proxy, f"0.0.0.0:{node.db_proxy_port}", f"db:{POSTGRES_PORT}")
    port = free_port()
    spec = node_spec(testnet, node, images_for(testnet), host_port=port)
    _docker(spec.run_argv())
    chain.add_to_network(node.node_id)
    wait_node_healthy(spec.name, f"127.0.0.1:{port}", testnet.health_timeout)


def undo_add(testnet: Testnet, record: dict[str, Any], node: NodeModel) -> list[dict[str, Any]]:
    """Out of the canonical network, container and proxies removed (its database stays)."""
    api = record["proxy"]["api"]
    return [
        {"op": "canonical", "rpc_url": record["chain"]["rpc"], "contracts": record["contracts"],
         "node_id": node.node_id, "member": False},
        {"op": "remove_container", "name": testnet.container(node.name)},
        {"op": "proxy_remove", "api": api, "proxy": node.name},
        {"op": "proxy_remove", "api": api, "proxy": node.db_proxy},
    ]


def _chain(record: dict[str, Any]) -> Chain:
    return Chain.connect(record["chain"]["rpc"], ContractAddresses.from_dict(record["contracts"]),
                         admin_account())


def _docker(argv: list[str]) -> None:
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise FaultError(f"churn-add: docker run failed: {proc.stderr.strip()[-300:]}")
