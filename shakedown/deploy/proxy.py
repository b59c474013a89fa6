"""The proxy role: toxiproxy with one proxy per node, the nodes' on-chain address."""

from __future__ import annotations

from pyinfra.api import deploy

from shakedown.deploy import docker
from shakedown.deploy.steps import step
from shakedown.model import (
    ANVIL_PORT,
    CHAIN_PROXY_PORT,
    NODE_PORT,
    POSTGRES_PORT,
    TOXIPROXY_PORT,
    Images,
    Testnet,
)
from shakedown.toxiproxy import ToxiproxyClient
from shakedown.waiting import wait_for


def proxy_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    """Shopify's toxiproxy when pulled, else the project's compatible server (node image)."""
    if images.toxiproxy_official:
        command: tuple[str, ...] = ("-host=0.0.0.0", f"-port={TOXIPROXY_PORT}")
    else:
        command = ("python", "-m", "shakedown.toxiproxy", "--host", "0.0.0.0",
                   "--port", str(TOXIPROXY_PORT))
    return docker.ContainerSpec(
        testnet=testnet.name, service="proxy", image=images.toxiproxy, network=testnet.network,
        command=command, ports=((testnet.ports.proxy_api, TOXIPROXY_PORT),),
    )


def _proxy(name: str, port: int, upstream: str) -> dict[str, object]:
    return {"name": name, "listen": f"0.0.0.0:{port}", "upstream": upstream, "enabled": True}


def wanted_proxies(testnet: Testnet) -> dict[str, dict[str, object]]:
    """Every path a fault may need to bend: peers and the gateway to each node (``node-100``
    on 10100), each node to its database (``node-100-db`` on 20100), everyone to the chain
    (``chain`` on 18545)."""
    wanted = {n.name: _proxy(n.name, n.proxy_port, f"{n.name}:{NODE_PORT}")
              for n in testnet.nodes}
    wanted.update({n.db_proxy: _proxy(n.db_proxy, n.db_proxy_port, f"db:{POSTGRES_PORT}")
                   for n in testnet.nodes})
    wanted["chain"] = _proxy("chain", CHAIN_PROXY_PORT, f"chain:{ANVIL_PORT}")
    return wanted


def _client(testnet: Testnet, timeout: float = 2.0) -> ToxiproxyClient:
    return ToxiproxyClient(f"http://127.0.0.1:{testnet.ports.proxy_api}", timeout=timeout)


def proxies_present(testnet: Testnet) -> bool:
    have = _client(testnet).proxies()
    return all(
        name in have and have[name].upstream == p["upstream"] and have[name].enabled
        for name, p in wanted_proxies(testnet).items()
    )


def create_proxies(testnet: Testnet) -> None:
    client = _client(testnet, timeout=10.0)
    wait_for(client.version, lambda v: bool(v), timeout=60, interval=0.2,
             what=f"{testnet.container('proxy')} API")
    client.populate(list(wanted_proxies(testnet).values()))  # type: ignore[arg-type]


@deploy("proxy")
def proxy(testnet: Testnet, images: Images) -> None:
    docker.container(name=f"{testnet.name}: proxy container", spec=proxy_spec(testnet, images))
    step(name=f"{testnet.name}: node proxies", what="proxies",
         done=lambda: proxies_present(testnet), action=lambda: create_proxies(testnet))
