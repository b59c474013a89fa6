"""The deployment record: where a testnet's services answer, from the host and from inside.

Written by the chain role once contracts exist, read by the CLI, verify and the tests. Every
endpoint appears twice: a ``127.0.0.1`` host port, and the in-network address (alias:port).

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
    ports, pw = testnet.ports, testnet.db_password
    nodes = [
        {
            "node_id": n.node_id,
            "name": n.name,
            "container": testnet.container(n.name),
            "signer": node_signer(n.index).address,
            "grpc": f"127.0.0.1:{ports.nodes[n.index]}",
            "grpc_internal": f"{n.name}:{model.NODE_PORT}",
            "http_address": f"proxy:{n.proxy_port}",
            "proxy": n.name,
            "db_proxy": n.db_proxy,
            "dsn": _dsn("127.0.0.1", ports.db, n.database, pw),
            "dsn_internal": _dsn("db", model.POSTGRES_PORT, n.database, pw),
        }
        for n in testnet.nodes
    ]
    return {
        "testnet": testnet.name,
        "network": testnet.network,
        "chain_id": CHAIN_ID,
        "contracts": contracts,
        "chain": {"rpc": f"http://127.0.0.1:{ports.chain}",
                  "rpc_internal": f"http://chain:{model.ANVIL_PORT}"},
        "proxy": {"api": f"http://127.0.0.1:{ports.proxy_api}",
                  "api_internal": f"http://proxy:{model.TOXIPROXY_PORT}",
                  "chain": "chain"},
        "db": {"dsn": _dsn("127.0.0.1", ports.db, "postgres", pw),
               "dsn_internal": _dsn("db", model.POSTGRES_PORT, "postgres", pw)},
        "nodes": nodes,
        "gateway": {"grpc": f"127.0.0.1:{ports.gateway}",
                    "grpc_internal": f"gateway:{model.GATEWAY_PORT}"}
        if testnet.gateways else None,
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
