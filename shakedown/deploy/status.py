"""``shakedown status``: each service's container state and health, read directly.

The chain's head comes from its RPC, each node's envelope count and vector clock from its own
database (as verify reads them), its health from gRPC: what is stored, not what is claimed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import psycopg

from shakedown.deploy.docker import LABEL_SERVICE, LABEL_TESTNET
from shakedown.deploy.record import load_record
from shakedown.model import Testnet
from shakedown.observe import read_envelope_count, read_vector_clock

PROBES_AT_ONCE = 16  # threads asking services; each mostly waits on a socket


@dataclass(frozen=True)
class Row:
    service: str
    container: str
    state: str
    health: str
    detail: str


def _try(probe: Any) -> tuple[str, str]:
    """``("ok", detail)`` or ``("down", short error)``."""
    try:
        return "ok", str(probe())
    except Exception as e:
        return "down", (str(e).splitlines() or [type(e).__name__])[0][:60]


def _chain_head(rpc: str) -> str:
    from web3 import Web3

    return f"head {Web3(Web3.HTTPProvider(rpc, request_kwargs={'timeout': 2})).eth.block_number}"


def _proxy(api: str) -> str:
    from shakedown.toxiproxy import ToxiproxyClient

    return f"{len(ToxiproxyClient(api, timeout=2).proxies())} proxies"


def _db(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        n = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'node_%'").fetchone()
    return f"{n[0] if n else 0} node databases"


def _gateway(endpoint: str) -> str:
    from shakedown.client import GatewayClient

    with GatewayClient(endpoint, timeout=2) as client:
        client.health()
    return "serving"


def _node(grpc_endpoint: str, dsn: str) -> str:
    from shakedown.client import NodeClient

    with NodeClient(grpc_endpoint, timeout=2) as client:
        client.health()
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        count, clock = read_envelope_count(conn), read_vector_clock(conn)
    vc = ",".join(f"{k}:{v}" for k, v in sorted(clock.items())) or "-"
    return f"envelopes {count}  clock {vc}"


def read_status(testnet: Testnet, client: docker.DockerClient | None) -> list[Row]:
    """One row per service of the testnet, in deploy order. For a systemd testnet the state
    is what its endpoints answer (units are read over SSH by faults and teardown, not here)."""
    record = load_record(testnet.record_path) or {}
    if testnet.on_hosts or client is None:
        return _probe_rows(testnet, record)
    mine = {"label": f"{LABEL_TESTNET}={testnet.name}"}
    containers = {
        (c.labels or {}).get(LABEL_SERVICE, c.name): c
        for c in client.containers.list(all=True, filters=mine)
    }
    services = ["chain", "proxy", "db", *(n.name for n in testnet.nodes), "gateway"]
    probes = _probes(record)
    answers = _ask({s: probes[s] for s in services if s in probes and s in containers})
    rows = []
    for service in services:
        c = containers.get(service)
        state = c.status if c else "absent"
        health, detail = answers.get(service, ("-", ""))
        rows.append(Row(service, testnet.container(service) if c else "-", state, health, detail))
    return rows


def _probe_rows(testnet: Testnet, record: dict[str, Any]) -> list[Row]:
    probes = _probes(record)
    where = {n["name"]: f"{n['unit']}@{n['host']}" for n in record.get("nodes", [])}
    services = [s for s in ["chain", "proxy", *(n.name for n in testnet.nodes), "gateway"]
                if s in probes]
    answers = _ask({s: probes[s] for s in services})
    rows = []
    for service in services:
        health, detail = answers[service]
        unit = where.get(service, testnet.unit(service))
        rows.append(Row(service, unit, "running" if health == "ok" else "down", health, detail))
    return rows


def _ask(probes: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every probe at once (each waits up to 2 s on its service): fifty nodes answer in the
    time of the slowest, not of all of them in turn."""
    if not probes:
        return {}
    with ThreadPoolExecutor(max_workers=min(PROBES_AT_ONCE, len(probes))) as pool:
        return dict(zip(probes, pool.map(_try, probes.values()), strict=True))


def _probes(record: dict[str, Any]) -> dict[str, Any]:
    """What to ask each service of a record, by service name."""
    probes: dict[str, Any] = {}
    if record.get("chain"):
        probes["chain"] = lambda: _chain_head(record["chain"]["rpc"])
    if (record.get("proxy") or {}).get("api"):
        probes["proxy"] = lambda: _proxy(record["proxy"]["api"])
    if record.get("db"):
        probes["db"] = lambda: _db(record["db"]["dsn"])
    if record.get("gateway"):
        probes["gateway"] = lambda: _gateway(record["gateway"]["grpc"])
    for node in record.get("nodes", []):
        probes[node["name"]] = lambda n=node: _node(n["grpc"], n["dsn"])
    return probes


def format_table(rows: list[Row]) -> str:
    """A plain aligned table for a terminal."""
    header = Row("SERVICE", "CONTAINER", "STATE", "HEALTH", "DETAIL")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in ("service", "container", "state",
                                                              "health")]
    lines = []
    for r in table:
        cells = [r.service, r.container, r.state, r.health]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  "
                     + r.detail)
    return "\n".join(line.rstrip() for line in lines)
