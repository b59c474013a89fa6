"""The proxy role: toxiproxy with one proxy per path a fault may bend; on hosts, one toxiproxy
per host fronting the nodes there."""

from __future__ import annotations

from pyinfra.api import deploy

from shakedown.deploy import docker, systemd
from shakedown.deploy.steps import step
from shakedown.model import (
    ANVIL_PORT,
    CHAIN_PROXY_PORT,
    HOST_CHAIN_PROXY,
    NODE_PORT,
    POSTGRES_PORT,
    TOXIPROXY_PORT,
    HostModel,
    Images,
    Testnet,
)
from shakedown.toxiproxy import ToxiproxyClient
from shakedown.waiting import wait_for


def toxiproxy_args(port: int) -> tuple[str, ...]:
    """The project's compatible server (``python -m shakedown.toxiproxy``) on ``port``."""
    return ("-m", "shakedown.toxiproxy", "--host", "0.0.0.0", "--port", str(port))


def proxy_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    """Shopify's toxiproxy when pulled, else the project's compatible server (node image)."""
    if images.toxiproxy_official:
        command: tuple[str, ...] = ("-host=0.0.0.0", f"-port={TOXIPROXY_PORT}")
    else:
        command = ("python", *toxiproxy_args(TOXIPROXY_PORT))
    return docker.ContainerSpec(
        testnet=testnet.name, service="proxy", image=images.toxiproxy, network=testnet.network,
        command=command, ports=((testnet.ports.proxy_api, TOXIPROXY_PORT),),
        bind=testnet.address,
    )


def proxy_unit(testnet: Testnet, build: str) -> systemd.UnitSpec:
    """``build`` (the wheelhouse's hash) is in the spec so a new build restarts the server."""
    python = f"{systemd.Paths(testnet.name).venv}/bin/python"
    return systemd.UnitSpec(testnet.name, "proxy",
                            (python, *toxiproxy_args(testnet.ports.proxy_api)),
                            env=(("SHAKEDOWN_BUILD", build),))


def _proxy(name: str, port: int, upstream: str) -> dict[str, object]:
    return {"name": name, "listen": f"0.0.0.0:{port}", "upstream": upstream, "enabled": True}


def wanted_proxies(testnet: Testnet, host: HostModel | None = None) -> dict[str, dict[str, object]]:
    """Every path a fault may need to bend: peers and the gateway to each node (``node-100``
    on 10100), each node to its database (``node-100-db`` on 20100), everyone to the chain
    (``chain`` on 18545). On a host: the same for the nodes there, on host ports."""
    if host is not None:
        return _wanted_on(testnet, host)
    wanted = {n.name: _proxy(n.name, n.proxy_port, f"{n.name}:{NODE_PORT}")
              for n in testnet.nodes}
    wanted.update({n.db_proxy: _proxy(n.db_proxy, n.db_proxy_port, f"db:{POSTGRES_PORT}")
                   for n in testnet.nodes})
    wanted["chain"] = _proxy("chain", CHAIN_PROXY_PORT, f"chain:{ANVIL_PORT}")
    return wanted


def _wanted_on(testnet: Testnet, host: HostModel) -> dict[str, dict[str, object]]:
    wanted = {}
    for n in testnet.nodes_on(host):
        node_port, db_port = testnet.host_ports(n)
        db_host = testnet.db_host(n).address
        wanted[n.name] = _proxy(n.name, node_port, f"127.0.0.1:{testnet.ports.nodes[n.index]}")
        wanted[n.db_proxy] = _proxy(n.db_proxy, db_port, f"{db_host}:{testnet.ports.db}")
    chain = testnet.role_host("chain").address
    wanted["chain"] = _proxy("chain", testnet.ports.chain + HOST_CHAIN_PROXY,
                             f"{chain}:{testnet.ports.chain}")
    return wanted


def proxy_api(testnet: Testnet, host: HostModel | None = None) -> str:
    return f"http://{testnet.reach(host)}:{testnet.ports.proxy_api}"


def _client(testnet: Testnet, host: HostModel | None, timeout: float = 2.0) -> ToxiproxyClient:
    return ToxiproxyClient(proxy_api(testnet, host), timeout=timeout)


def proxies_present(testnet: Testnet, host: HostModel | None = None) -> bool:
    have = _client(testnet, host).proxies()
    return all(
        name in have and have[name].upstream == p["upstream"] and have[name].enabled
        for name, p in wanted_proxies(testnet, host).items()
    )


def create_proxies(testnet: Testnet, host: HostModel | None = None) -> None:
    client = _client(testnet, host, timeout=10.0)
    what = f"{host.name if host else testnet.container('proxy')} toxiproxy API"
    wait_for(client.version, lambda v: bool(v), timeout=60, interval=0.2, what=what)
    client.populate(list(wanted_proxies(testnet, host).values()))  # type: ignore[arg-type]


def proxies(testnet: Testnet, host: HostModel | None = None) -> None:
    step(name=f"{testnet.name}: node proxies", what="proxies",
         done=lambda: proxies_present(testnet, host), action=lambda: create_proxies(testnet, host))


@deploy("proxy")
def proxy(testnet: Testnet, images: Images) -> None:
    docker.container(name=f"{testnet.name}: proxy container", spec=proxy_spec(testnet, images))
    proxies(testnet)


@deploy("proxy unit")
def proxy_on_host(testnet: Testnet, here: HostModel, build: str) -> None:
    systemd.unit(name=f"{testnet.name}: proxy unit", spec=proxy_unit(testnet, build))
    proxies(testnet, here)
