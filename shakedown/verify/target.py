"""What the verify suite checks: one testnet's endpoints and expectations, resolved once.

Everything comes from the deployment record when there is one; otherwise from the inventory:
its ``contracts`` data (the six addresses) for a network someone else deployed, with node
endpoints, signers and addresses laid out as ``shakedown up`` lays them out.

A record that describes another testnet than the inventory (another name, node set or
runtime: deployed from another inventory) is refused with one line naming both, so verify
never checks some of a testnet's nodes, or another testnet's, while it looks like success.

    target = resolve_target(Path("inventories/local.py"))
    target.node("node-200").dsn
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shakedown import model
from shakedown.chain.records import ContractAddresses
from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, NotFoundError
from shakedown.keys import node_signer
from shakedown.model import Testnet, load_inventory

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class NodeTarget:
    """One inventory node: where its database answers and what the chain must say of it."""

    name: str
    node_id: int
    dsn: str
    signer: str        # the signer address the node must be registered with
    http_address: str  # the address it must be registered at

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Target:
    """The testnet under verification."""

    testnet: Testnet
    chain_rpc: str
    contracts: ContractAddresses
    nodes: tuple[NodeTarget, ...]
    proxy_api: str | None
    source: str  # where the endpoints came from: the record's path, or the inventory's

    def node(self, name: str) -> NodeTarget:
        for n in self.nodes:
            if n.name == name:
                return n
        raise NotFoundError(f"{self.testnet.name}: no node {name!r}; "
                            f"known: {', '.join(n.name for n in self.nodes)}")

    def node_by_id(self, node_id: int) -> NodeTarget | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)


def find_inventory(path: str | Path) -> Path:
    """``path`` as given, else relative to the repository (so ``pytest verify/`` works anywhere)."""
    given = Path(path)
    if given.is_file() or given.is_absolute():
        return given
    beside_repo = REPO_ROOT / given
    return beside_repo if beside_repo.is_file() else given


def pick_testnet(inventory: Path, name: str | None = None) -> tuple[Testnet, dict[str, Any]]:
    """The inventory's testnet named ``name`` (or its only one) and that host's raw data."""
    testnets = load_inventory(inventory)
    data = model.host_data(inventory)
    if name is None:
        if len(testnets) > 1:
            names = ", ".join(t.name for t in testnets)
            raise ConfigError(f"inventory {inventory} defines testnets {names}; pick one "
                              "with --testnet")
        chosen = testnets[0]
    else:
        found = [t for t in testnets if t.name == name]
        if not found:
            names = ", ".join(t.name for t in testnets)
            raise ConfigError(f"inventory {inventory}: no testnet {name!r}; it defines {names}")
        chosen = found[0]
    raw = next((d for d in data if str(d.get("testnet") or "shakedown") == chosen.name), {})
    return chosen, raw


def describe(name: str, node_ids: Iterable[int], runtime: str) -> str:
    """``testnet big (nodes 100, 200; systemd)``: what a record or an inventory describes."""
    ids = ", ".join(map(str, sorted(node_ids))) or "none"
    where = "" if runtime == "docker" else f"; {runtime}"
    return f"testnet {name} (nodes {ids}{where})"


def _described(record: dict[str, Any], name: str) -> tuple[str, set[int], str]:
    """(testnet name, node ids, runtime) a record describes; ``name`` if it names none."""
    return (str(record.get("testnet") or name),
            {int(n["node_id"]) for n in record.get("nodes", [])},
            str(record.get("runtime") or "docker"))


def record_disagrees(net: Testnet, record: dict[str, Any], record_path: Path,
                     inventory: Path) -> str | None:
    """One line when ``record`` describes another testnet than the inventory's ``net``."""
    seen = _described(record, net.name)
    expected = (net.name, {n.node_id for n in net.nodes}, net.runtime)
    if seen == expected:
        return None
    return (f"inventory {inventory} describes {describe(*expected)}, but the deployment record "
            f"{record_path} describes {describe(*seen)}; pass --inventory with the inventory "
            f"{seen[0]} was deployed from (or --record with this testnet's own record)")


def check_record(net: Testnet, inventory: Path, record_path: Path | None = None) -> None:
    """ConfigError (one line) when the record verify would read describes another testnet."""
    path = record_path or net.record_path
    record = load_record(path)
    if record is not None and (problem := record_disagrees(net, record, path, inventory)):
        raise ConfigError(problem)


def records_beside(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Other testnets' records laid out like ``path`` (``<dir>/<testnet>/deployment.json``)."""
    found = []
    for other in sorted(path.parent.parent.glob(f"*/{path.name}")):
        record = load_record(other)
        if other != path and record is not None:
            found.append((other, record))
    return found


def _no_record(net: Testnet, inventory: Path) -> ConfigError:
    others = [f"{describe(*_described(r, p.parent.name))} at {p}"
              for p, r in records_beside(net.record_path)]
    found = (f"; records found: {'; '.join(others)} (pass --inventory with the inventory "
             "that deployed it)") if others else ""
    return ConfigError(f"{net.name}: no deployment record at {net.record_path} and the "
                       f"inventory {inventory} names no contracts; deploy it (shakedown up), "
                       f"pass --record, or add contracts={{...}} to the host data{found}")


def resolve_target(inventory: Path, *, testnet: str | None = None,
                   record_path: Path | None = None) -> Target:
    """Resolve endpoints and expectations; ConfigError (one line) when nothing names contracts
    or the record describes another testnet."""
    net, data = pick_testnet(inventory, testnet)
    if record_path is not None:
        net = dataclasses.replace(net, record_path=record_path)
    record = load_record(net.record_path)
    if record is not None:
        if problem := record_disagrees(net, record, net.record_path, inventory):
            raise ConfigError(problem)
        return _from_record(net, record)
    if data.get("contracts"):
        return _from_inventory(net, data, inventory)
    raise _no_record(net, inventory)


def _from_record(net: Testnet, record: dict[str, Any]) -> Target:
    by_id = {int(n["node_id"]): n for n in record.get("nodes", [])}
    nodes = []
    for n in net.nodes:
        entry = by_id.get(n.node_id)
        if entry is None:
            raise ConfigError(f"{net.name}: the record at {net.record_path} has no {n.name}")
        nodes.append(NodeTarget(n.name, n.node_id, str(entry["dsn"]), str(entry["signer"]),
                                str(entry["http_address"])))
    proxy = record.get("proxy") or {}
    contracts = ContractAddresses.from_dict(record["contracts"])
    return Target(net, str(record["chain"]["rpc"]), contracts, tuple(nodes), proxy.get("api"),
                  str(net.record_path))


def _from_inventory(net: Testnet, data: dict[str, Any], inventory: Path) -> Target:
    """A network without a local record: addresses from data, the rest laid out as deployed."""
    host = str(data.get("verify_host", "127.0.0.1"))
    nodes = tuple(
        NodeTarget(n.name, n.node_id,
                   f"postgresql://postgres:{net.db_password}@{host}:{net.ports.db}/{n.database}",
                   str((data.get("node_signers") or {}).get(n.node_id)
                       or node_signer(n.index).address),
                   f"proxy:{n.proxy_port}")
        for n in net.nodes)
    proxy = f"http://{host}:{net.ports.proxy_api}" if net.has("proxy") else None
    return Target(net, str(data.get("chain_rpc") or f"http://{host}:{net.ports.chain}"),
                  ContractAddresses.from_dict(data["contracts"]), nodes, proxy, str(inventory))


