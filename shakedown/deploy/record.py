"""The deployment record: where a testnet's services answer, from the controller and inside.

Written by the chain role once contracts exist, read by the CLI, verify and the tests. On a
Docker host every endpoint appears twice: its published port (``127.0.0.1``, or a remote
Docker host's address), and the in-network address (alias:port). On VMs there is one address.

    record = load_record(testnet.record_path)   # None before the first deploy
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shakedown import model
from shakedown.keys import node_signer
from shakedown.model import Testnet

CHAIN_ID = 31337


def _dsn(host: str, port: int, database: str, password: str) -> str:
    return f"postgresql://postgres:{password}@{host}:{port}/{database}"


def build_record(testnet: Testnet, contracts: dict[str, str]) -> dict[str, Any]:
    """The full record for ``testnet`` with the given contract addresses."""
    if testnet.on_hosts:
        return _hosts_record(testnet, contracts)
    ports, pw, here = testnet.ports, testnet.db_password, testnet.reach()
    nodes = [
        {
            "node_id": n.node_id,
            "name": n.name,
            "container": testnet.container(n.name),
            "signer": node_signer(n.index).address,
            "grpc": f"{here}:{ports.nodes[n.index]}",
            "grpc_internal": f"{n.name}:{model.NODE_PORT}",
            "http_address": f"proxy:{n.proxy_port}",
            "proxy": n.name,
            "db_proxy": n.db_proxy,
            "dsn": _dsn(here, ports.db, n.database, pw),
            "dsn_internal": _dsn("db", model.POSTGRES_PORT, n.database, pw),
        }
        for n in testnet.nodes
    ]
    return {
        "testnet": testnet.name,
        "network": testnet.network,
        "chain_id": CHAIN_ID,
        "contracts": contracts,
        "chain": {"rpc": f"http://{here}:{ports.chain}",
                  "rpc_internal": f"http://chain:{model.ANVIL_PORT}"},
        "proxy": {"api": f"http://{here}:{ports.proxy_api}",
                  "api_internal": f"http://proxy:{model.TOXIPROXY_PORT}",
                  "chain": "chain"},
        "db": {"dsn": _dsn(here, ports.db, "postgres", pw),
               "dsn_internal": _dsn("db", model.POSTGRES_PORT, "postgres", pw)},
        "nodes": nodes,
        "gateway": {"grpc": f"{here}:{ports.gateway}",
                    "grpc_internal": f"gateway:{model.GATEWAY_PORT}"}
        if testnet.gateways else None,
    }


def _hosts_record(testnet: Testnet, contracts: dict[str, str]) -> dict[str, Any]:
    """A systemd testnet's record: every endpoint is ``<host address>:<port>``, for the
    controller and peers alike, and each node names its host and unit."""
    ports, pw = testnet.ports, testnet.db_password
    chain = testnet.role_host("chain")
    proxies = {h.name: f"http://{h.address}:{ports.proxy_api}" for h in testnet.hosts
               if h.has("proxy")}
    nodes = []
    for n in testnet.nodes:
        host, db = testnet.host_of(n), testnet.db_host(n)
        nodes.append({
            "node_id": n.node_id, "name": n.name, "host": host.name, "unit": testnet.unit(n.name),
            "signer": node_signer(n.index).address,
            "grpc": f"{host.address}:{ports.nodes[n.index]}",
            "http_address": testnet.node_address(n),
            "proxy": n.name if host.has("proxy") else None,
            "proxy_api": proxies.get(host.name),
            "db_proxy": n.db_proxy if host.has("proxy") else None,
            "dsn": _dsn(db.address, ports.db, n.database, pw),
        })
    gateway = testnet.role_host("gateway") if testnet.has("gateway") else None
    return {
        "testnet": testnet.name,
        "runtime": "systemd",
        "hosts": {h.name: {"address": h.address, "roles": list(h.roles)} for h in testnet.hosts},
        "chain_id": CHAIN_ID,
        "contracts": contracts,
        "chain": {"rpc": f"http://{chain.address}:{ports.chain}"},
        "proxy": {"api": next(iter(proxies.values()), None), "chain": "chain"},
        "proxies": proxies,
        "nodes": nodes,
        "gateway": {"grpc": f"{gateway.address}:{ports.gateway}"}
        if gateway and testnet.gateways else None,
    }


def load_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def remove_record(path: Path) -> None:
    """Remove the record and its directory when empty; harmless when absent."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass
