"""What a fault can aim at: the services of one deployed testnet, found on its Docker host.

A target is a service name (``node-200``, ``chain``, ``db``, ``proxy``, ``gateway``), a comma
list of them, or ``nodes`` for every node. Services are found by their labels, so a node that
churn added is a target too.

    targets = Targets.of(testnet, record)
    targets.resolve("node-100,node-200")   # -> [Service(name="node-100", ...), ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shakedown.deploy.docker import LABEL_SERVICE, LABEL_TESTNET
from shakedown.errors import ConfigError
from shakedown.faults.ops import engine
from shakedown.model import PROXY_LISTEN_BASE, Testnet


@dataclass(frozen=True)
class Service:
    """One service of the testnet: its name, container, role and (for nodes) node id."""

    name: str
    container: str
    role: str
    node_id: int | None = None

    @property
    def proxy_port(self) -> int:
        """In-network port of the toxiproxy listener in front of this node."""
        assert self.node_id is not None, f"{self.name} is not a node"
        return PROXY_LISTEN_BASE + self.node_id


def _role(service: str) -> str:
    return "node" if service.startswith("node-") else service


@dataclass(frozen=True)
class Targets:
    """The services of a testnet plus the endpoints faults talk to from the controller."""

    testnet: Testnet
    record: dict[str, Any]
    services: tuple[Service, ...]
    addresses: dict[str, str]  # service -> address on the testnet network (running ones)

    @classmethod
    def of(cls, testnet: Testnet, record: dict[str, Any]) -> Targets:
        """One listing call (no per-container inspect), so applying a fault stays quick."""
        label = {"label": f"{LABEL_TESTNET}={testnet.name}"}
        found, addresses = [], {}
        for c in engine().api.containers(all=True, filters=label):
            name, service = c["Names"][0].lstrip("/"), c["Labels"].get(LABEL_SERVICE, "")
            if not service or name != testnet.container(service):
                continue  # e.g. an original kept aside by a clock skew
            node_id = int(service[5:]) if service.startswith("node-") else None
            found.append(Service(service, name, _role(service), node_id))
            network = (c.get("NetworkSettings") or {}).get("Networks", {}).get(testnet.network)
            if network and network.get("IPAddress"):
                addresses[service] = network["IPAddress"]
        found.append(Service("network", "", "network"))  # what churn-add joins
        found.sort(key=lambda s: (s.role != "node", s.node_id or 0, s.name))
        return cls(testnet, record, tuple(found), addresses)

    @property
    def proxy_api(self) -> str:
        return str(self.record["proxy"]["api"])

    @property
    def chain_rpc(self) -> str:
        return str(self.record["chain"]["rpc"])

    @property
    def nodes(self) -> list[Service]:
        return [s for s in self.services if s.role == "node"]

    def resolve(self, spec: str, roles: tuple[str, ...] = ()) -> list[Service]:
        """The services ``spec`` names; ConfigError naming what is unknown or not allowed."""
        by_name = {s.name: s for s in self.services}
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise ConfigError("empty target; name a service such as node-100")
        picked: list[Service] = []
        for name in names:
            group = self.nodes if name == "nodes" else [by_name.get(name)]
            if None in group:
                known = ", ".join(["nodes", *by_name]) or "(nothing deployed)"
                raise ConfigError(f"unknown target {name!r} in testnet {self.testnet.name}; "
                                  f"known: {known}")
            for service in group:
                assert service is not None
                if roles and service.role not in roles:
                    raise ConfigError(f"target {service.name} is a {service.role}; this fault "
                                      f"applies to: {', '.join(roles)}")
                if service not in picked:
                    picked.append(service)
        return picked

    def ip(self, service: str) -> str:
        """The service's address on the testnet network; ConfigError when it has none."""
        if service not in self.addresses:
            raise ConfigError(f"{self.testnet.container(service)} is not running on "
                              f"{self.testnet.network}; start it first ('shakedown up')")
        return self.addresses[service]
