"""The gateway role: refnode's gateway, signing with the first gateway key."""

from __future__ import annotations

from pyinfra.api import deploy

from shakedown.deploy import docker
from shakedown.deploy.node import contracts_of
from shakedown.keys import gateway as gateway_key
from shakedown.keys import key_hex
from shakedown.model import GATEWAY_PORT, Images, Testnet


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


@deploy("gateway")
def gateway(testnet: Testnet, images: Images) -> None:
    if testnet.gateways:
        docker.container(name=f"{testnet.name}: gateway container",
                         spec=lambda: gateway_spec(testnet, images))
