"""The typed testnet model, read once from an inventory host's data and validated.

Deploy roles, the CLI and verify all read the testnet through this model, never through raw
``host.data``, so a bad inventory fails here with one line naming the key and the value seen.

    testnet = Testnet.from_data({"testnet": "sd", "roles": ["chain", "node"], "nodes": 3})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError

ROLES = ("chain", "proxy", "db", "node", "gateway")
RUNTIMES = ("docker", "systemd")
NODE_ID_STEP = 100  # the NodeRegistry assigns 100, 200, 300, ... in registration order
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_REPO_ROOT = Path(__file__).resolve().parents[1]

# In-network ports: fixed, because every service has its own address on the testnet bridge.
ANVIL_PORT = 8545
TOXIPROXY_PORT = 8474
POSTGRES_PORT = 5432
NODE_PORT = 5050
GATEWAY_PORT = 5052
PROXY_LISTEN_BASE = 10000  # node 200's proxy listener is proxy:10200
DB_PROXY_LISTEN_BASE = 20000  # node 200 reaches its database through proxy:20200
CHAIN_PROXY_PORT = 18545  # nodes and the gateway reach anvil through proxy:18545
# On hosts (systemd runtime) every listener is a host port laid out from port_base, so two
# testnets can share VMs: +4 a host's chain proxy, +100+k node k's proxy, +200+k its db proxy.
HOST_CHAIN_PROXY = 4
HOST_NODE_PROXY = 100
HOST_DB_PROXY = 200


@dataclass(frozen=True)
class Ports:
    """Host ports, laid out from one base port; published on 127.0.0.1 only, unless the
    Docker host is remote (then on its address), or listened on by units on VMs."""

    chain: int
    proxy_api: int
    db: int
    gateway: int
    nodes: tuple[int, ...]

    @classmethod
    def from_base(cls, base: int, node_count: int) -> Ports:
        """``base`` chain, +1 toxiproxy API, +2 postgres, +3 gateway, +10+k node k."""
        nodes = tuple(base + 10 + k for k in range(node_count))
        return cls(base, base + 1, base + 2, base + 3, nodes)

    def all(self) -> dict[str, int]:
        """Every host port by service name, for clash checks."""
        ports = {"chain": self.chain, "proxy": self.proxy_api, "db": self.db,
                 "gateway": self.gateway}
        ports.update({f"node-{(k + 1) * NODE_ID_STEP}": p for k, p in enumerate(self.nodes)})
        return ports


@dataclass(frozen=True)
class NodeModel:
    """One node: its 0-based index picks its anvil keys; its id is assigned on-chain."""

    index: int
    node_id: int
    env: tuple[tuple[str, str], ...] = ()
    host: str = ""  # systemd runtime: the inventory host it runs on

    @property
    def name(self) -> str:
        return f"node-{self.node_id}"

    @property
    def database(self) -> str:
        return f"node_{self.node_id}"

    @property
    def proxy_port(self) -> int:
        """The toxiproxy listener in front of this node (its on-chain address's port)."""
        return PROXY_LISTEN_BASE + self.node_id

    @property
    def db_proxy(self) -> str:
        """The toxiproxy proxy between this node and its database."""
        return f"{self.name}-db"

    @property
    def db_proxy_port(self) -> int:
        return DB_PROXY_LISTEN_BASE + self.node_id


@dataclass(frozen=True)
class Images:
    """Image references; empty means "build or find them with shakedown.images"."""

    node: str = ""
    anvil: str = ""
    postgres: str = ""
    toxiproxy: str = ""
    toxiproxy_official: bool = False


@dataclass(frozen=True)
class HostModel:
    """One inventory host of a systemd testnet: the address peers use and what it runs."""

    name: str
    address: str
    roles: tuple[str, ...]

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Testnet:
    """One testnet: on one Docker host (runtime docker), or spread over the hosts of an
    inventory as systemd units (runtime systemd), where peers dial ``<host address>:<port>``."""

    __test__ = False  # not a pytest test class, despite its name

    name: str
    roles: tuple[str, ...]
    nodes: tuple[NodeModel, ...]
    ports: Ports
    images: Images = field(default_factory=Images)
    record_path: Path = Path()
    db_password: str = "shakedown"
    gateways: int = 1
    health_timeout: int = 90  # seconds a deploy waits for its nodes to answer
    runtime: str = "docker"
    hosts: tuple[HostModel, ...] = ()  # systemd runtime: every host, in inventory order
    # docker runtime: where ports are published and the controller dials them. 127.0.0.1 on
    # this machine; a remote Docker host (``@ssh``, deploy/docker_host.py) names its address.
    address: str = "127.0.0.1"

    @property
    def network(self) -> str:
        return f"{self.name}-net"

    def container(self, service: str) -> str:
        """The container name of ``service`` (``chain``, ``node-100``...): testnet-prefixed."""
        return f"{self.name}-{service}"

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def on_hosts(self) -> bool:
        """Spread over inventory hosts (systemd runtime) rather than one Docker network."""
        return self.runtime == "systemd"

    def unit(self, service: str) -> str:
        """The systemd unit of ``service`` on its host: testnet-prefixed like containers."""
        return f"{self.name}-{service}.service"

    # --- where things run (systemd runtime) ---------------------------------------------------

    def host(self, name: str) -> HostModel:
        return next(h for h in self.hosts if h.name == name)

    def role_host(self, role: str) -> HostModel:
        """The first host that runs ``role`` (the chain's, the gateway's)."""
        return next(h for h in self.hosts if h.has(role))

    def host_of(self, node: NodeModel) -> HostModel:
        return self.host(node.host)

    def db_host(self, node: NodeModel) -> HostModel:
        """A node's database lives on its own host when that host has the db role."""
        own = self.host_of(node)
        return own if own.has("db") else self.role_host("db")

    def nodes_on(self, host: HostModel) -> tuple[NodeModel, ...]:
        return tuple(n for n in self.nodes if n.host == host.name)

    def host_ports(self, node: NodeModel) -> tuple[int, int]:
        """Host ports of a node's proxy listener and of its database proxy (systemd runtime)."""
        base = self.ports.chain
        return base + HOST_NODE_PROXY + node.index, base + HOST_DB_PROXY + node.index

    # --- how services reach each other ----------------------------------------------------------

    def node_address(self, node: NodeModel) -> str:
        """A node's address on-chain, what peers and gateways dial: its proxy when it has one."""
        if not self.on_hosts:
            return f"proxy:{node.proxy_port}"
        host = self.host_of(node)
        if host.has("proxy"):
            return f"{host.address}:{self.host_ports(node)[0]}"
        return f"{host.address}:{self.ports.nodes[node.index]}"

    def chain_rpc_internal(self, host: HostModel | None = None) -> str:
        """What a node or gateway (on ``host``) dials for the chain: a proxy when there is one."""
        if self.on_hosts:
            assert host is not None
            if host.has("proxy"):
                return f"http://{host.address}:{self.ports.chain + HOST_CHAIN_PROXY}"
            return f"http://{self.role_host('chain').address}:{self.ports.chain}"
        if self.has("proxy"):
            return f"http://proxy:{CHAIN_PROXY_PORT}"
        return f"http://chain:{ANVIL_PORT}"

    def db_address_internal(self, node: NodeModel) -> str:
        """``host:port`` a node dials for its database: its own proxy when there is one."""
        if self.on_hosts:
            host = self.host_of(node)
            if host.has("proxy"):
                return f"{host.address}:{self.host_ports(node)[1]}"
            return f"{self.db_host(node).address}:{self.ports.db}"
        if self.has("proxy"):
            return f"proxy:{node.db_proxy_port}"
        return f"db:{POSTGRES_PORT}"

    @property
    def remote_docker(self) -> bool:
        """Containers on a Docker host elsewhere, reached over SSH and at its address."""
        return not self.on_hosts and self.address not in ("127.0.0.1", "localhost")

    def reach(self, host: HostModel | None = None) -> str:
        """The address the controller dials for a published port: the Docker host's
        (127.0.0.1 here), or on VMs the address of ``host``."""
        return host.address if self.on_hosts and host is not None else self.address

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Testnet:
        """Build and validate from inventory data; raise ConfigError with one line."""
        name = str(data.get("testnet") or "shakedown")
        if not _NAME.match(name):
            raise ConfigError(f"testnet name {name!r}: use 1-31 lowercase letters, digits, '-'")
        runtime = str(data.get("runtime") or "docker")
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
        roles = _roles(data.get("roles", ROLES))
        count = _int(data, "nodes", 3, 1, 30)
        envs = _node_envs(data, count)
        nodes = tuple(NodeModel(k, (k + 1) * NODE_ID_STEP, envs.get((k + 1) * NODE_ID_STEP, ()))
                      for k in range(count))
        ports = Ports.from_base(_int(data, "port_base", 25000, 1024, 65000), count)
        record = data.get("record_path") or _REPO_ROOT / ".shakedown" / name / "deployment.json"
        return cls(name=name, roles=roles, nodes=nodes, ports=ports, images=_images(data),
                   record_path=Path(record), db_password=str(data.get("db_password", "shakedown")),
                   gateways=_int(data, "gateways", 1, 0, 1),
                   health_timeout=_int(data, "health_timeout", 90, 1, 3600), runtime=runtime,
                   address=str(data.get("address") or "127.0.0.1"))

    @classmethod
    def from_hosts(cls, hosts: Sequence[tuple[str, Mapping[str, Any]]]) -> Testnet:
        """A systemd testnet over inventory hosts: testnet-wide data (name, nodes, port_base)
        as group data, ``roles`` and ``address`` per host. Nodes go round-robin over the hosts
        with the node role, in inventory order."""
        data = hosts[0][1]
        placed = tuple(HostModel(h, _address(h, d), _roles(d.get("roles", ()))) for h, d in hosts)
        every = {r for h in placed for r in h.roles}
        net = cls.from_data({**data, "roles": [r for r in ROLES if r in every]})
        for role, hosts_with in ((r, [h.name for h in placed if h.has(r)]) for r in ROLES):
            if role in ("chain", "gateway") and len(hosts_with) > 1:
                raise ConfigError(f"{net.name}: role {role} is on {', '.join(hosts_with)}; "
                                  "put it on one host")
        if net.has("node") and not net.has("db"):
            raise ConfigError(f"{net.name}: nodes need a host with the db role")
        runs_nodes = [h for h in placed if h.has("node")]
        nodes = tuple(replace(n, host=runs_nodes[n.index % len(runs_nodes)].name)
                      for n in net.nodes) if runs_nodes else ()
        return replace(net, runtime="systemd", hosts=placed, nodes=nodes)


def _roles(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str) or not all(isinstance(r, str) for r in raw):
        raise ConfigError(f"roles: expected a list of role names, got {raw!r}")
    unknown = [r for r in raw if r not in ROLES]
    if unknown:
        raise ConfigError(f"unknown role {unknown[0]!r}; known: {', '.join(ROLES)}")
    return tuple(r for r in ROLES if r in raw)  # deploy order, whatever the inventory's order


def _address(name: str, data: Mapping[str, Any]) -> str:
    """Where peers reach a host: its ``address``, else its inventory name when that is one."""
    address = data.get("address") or ("" if name.startswith("@") else name)
    if not address:
        raise ConfigError(f"host {name}: give it an address (host data address=...)")
    return str(address)


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An integer field: an int, or decimal digits (pyinfra's ``--data`` gives strings).

    ``3.5``, ``True`` or ``"three"`` are refused rather than truncated or read as 1.
    """
    raw = data.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ConfigError(f"{key}: expected an integer, got {raw!r}")
    if isinstance(raw, str) and not re.fullmatch(r"\s*\d+\s*", raw):
        raise ConfigError(f"{key}: expected an integer, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} is outside {low}-{high}")
    return value


def _node_envs(data: Mapping[str, Any], count: int) -> dict[int, tuple[tuple[str, str], ...]]:
    """Extra environment per node: ``node_env: {200: {"REFNODE_LOG_LEVEL": "DEBUG"}}``.

    A node id the testnet does not have is refused, naming the ids it has.
    """
    per_node = data.get("node_env") or {}
    if not isinstance(per_node, Mapping):
        raise ConfigError(f"node_env: expected {{node id: {{NAME: value}}}}, got {per_node!r}")
    known = [(k + 1) * NODE_ID_STEP for k in range(count)]
    out: dict[int, tuple[tuple[str, str], ...]] = {}
    for raw_id, env in per_node.items():
        node_id = _node_id(raw_id)
        if node_id not in known:
            raise ConfigError(f"node_env: no node {raw_id!r} in this testnet; its nodes are "
                              f"{', '.join(map(str, known))}")
        if not isinstance(env, Mapping):
            raise ConfigError(f"node_env[{node_id}]: expected {{NAME: value}}, got {env!r}")
        for key in env:
            if not ENV_NAME.match(str(key)):
                raise ConfigError(f"node_env[{node_id}]: {key!r} is not an environment "
                                  "variable name")
        out[node_id] = tuple(sorted({**dict(out.get(node_id, ())),
                                     **{str(k): str(v) for k, v in env.items()}}.items()))
    return out


def _node_id(raw: Any) -> int:
    if isinstance(raw, bool) or not (isinstance(raw, int) or
                                     (isinstance(raw, str) and raw.isdigit())):
        raise ConfigError(f"node_env: {raw!r} is not a node id (100, 200, ...)")
    return int(raw)


def _images(data: Mapping[str, Any]) -> Images:
    raw = data.get("images") or {}
    unknown = set(raw) - {"node", "anvil", "postgres", "toxiproxy"}
    if unknown:
        raise ConfigError(f"images: unknown image {sorted(unknown)[0]!r}")
    return Images(node=str(raw.get("node", "")), anvil=str(raw.get("anvil", "")),
                  postgres=str(raw.get("postgres", "")), toxiproxy=str(raw.get("toxiproxy", "")))


def load_inventory(path: Path) -> list[Testnet]:
    """The testnets an inventory file defines, validated: one per Docker host with testnet
    data, one per testnet name for hosts with ``runtime: systemd``.

    Raises ConfigError with one line.
    """
    return testnets_of(inventory_hosts(path), str(path))


def testnets_of(hosts: Sequence[tuple[str, Mapping[str, Any]]], where: str) -> list[Testnet]:
    """The testnets of ``(host name, data)`` pairs (an inventory file's, or pyinfra's)."""
    found: list[Testnet] = []
    spread: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, data in hosts:
        if "testnet" not in data and "roles" not in data:
            continue
        if data.get("runtime") == "systemd":
            spread.setdefault(str(data.get("testnet") or "shakedown"), []).append((name, data))
        else:
            found.append(Testnet.from_data(data))
    found += [Testnet.from_hosts(group) for group in spread.values()]
    if not found:
        raise ConfigError(f"inventory {where}: no host carries testnet data (testnet, roles)")
    return found


def host_data(path: Path) -> list[dict[str, Any]]:
    """Every host's data in an inventory file, group data merged under it, as pyinfra reads it."""
    return [data for _, data in inventory_hosts(path)]


def inventory_hosts(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(host name, data)`` for every host of an inventory file, group data merged under.

    Reads the pyinfra inventory shapes used here: module-level lists of hosts, each a name or
    ``(name, data)``, optionally as ``(hosts, group_data)``. A host in several groups is one
    host, its data merged; groups named after roles give it those roles.
    """
    import runpy

    if not path.is_file():
        raise ConfigError(f"inventory not found: {path}")
    try:
        names = runpy.run_path(str(path))
    except Exception as e:
        raise ConfigError(f"inventory {path}: {type(e).__name__}: {e}") from e
    merged: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    for group_name, value in names.items():
        for name, group, data in _hosts(value):
            merged.setdefault(name, {}).update({**group, **data})
            groups.setdefault(name, []).append(group_name)
    return [(name, with_group_roles(data, groups[name])) for name, data in merged.items()]


def with_group_roles(data: Mapping[str, Any], groups: Sequence[str]) -> dict[str, Any]:
    """A host's data with ``roles`` taken from the inventory groups named after roles
    (``chain = [...]``, ``node = [...]``) when the host data names none."""
    roles = [g for g in groups if g in ROLES]
    if "roles" in data or not roles:
        return dict(data)
    return {**data, "roles": roles}


def _hosts(value: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """``(name, group data, host data)`` for each host of one inventory group value."""
    group: dict[str, Any] = {}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        value, group = value
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            out.append((str(item[0]), group, item[1]))
        elif isinstance(item, str):
            out.append((item, group, {}))
    return out
