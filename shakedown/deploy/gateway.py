"""The gateway role: refnode's gateway, signing with the first gateway key."""

from __future__ import annotations

from pyinfra.api import deploy

from shakedown.deploy import docker
from shakedown.deploy.node import contracts_of, log_tail
from shakedown.deploy.steps import step
from shakedown.errors import TimeoutExpired
from shakedown.keys import gateway as gateway_key
from shakedown.keys import key_hex
from shakedown.model import GATEWAY_PORT, Images, Testnet
from shakedown.waiting import wait_for


def gateway_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    contracts = contracts_of(testnet)
    return docker.ContainerSpec(
        testnet=testnet.name, service="gateway", image=images.node, network=testnet.network,
        command=("refnode-gateway",),
        env=(("GATEWAY_CHAIN_RPC", testnet.chain_rpc_internal()),
             ("GATEWAY_NODE_REGISTRY", contracts.get("node_registry", "")),
             ("GATEWAY_LISTEN", f"0.0.0.0:{GATEWAY_PORT}")),
        secret_env=(("GATEWAY_PAYER_KEY", key_hex(gateway_key(0))),),
        ports=((testnet.ports.gateway, GATEWAY_PORT),),
    )


def gateway_healthy(testnet: Testnet) -> bool:
    from shakedown.client import GatewayClient

    with GatewayClient(f"127.0.0.1:{testnet.ports.gateway}", timeout=2.0) as client:
        client.health()  # raises until the gateway serves
        return True


def wait_gateway_healthy(testnet: Testnet) -> None:
    """The gateway serves (it needs the chain and a canonical node); TimeoutExpired with its log."""
    name = testnet.container("gateway")
    try:
        wait_for(lambda: gateway_healthy(testnet), bool, timeout=testnet.health_timeout,
                 interval=0.3, what=f"{name} gRPC health")
    except TimeoutExpired as e:
        raise TimeoutExpired(f"{e}; log tail: {log_tail(name)}") from e


@deploy("gateway")
def gateway(testnet: Testnet, images: Images) -> None:
    if testnet.gateways:
        docker.container(name=f"{testnet.name}: gateway container",
                         spec=lambda: gateway_spec(testnet, images))
        step(name=f"{testnet.name}: gateway healthy", what="health",
             done=lambda: gateway_healthy(testnet), action=lambda: wait_gateway_healthy(testnet))
