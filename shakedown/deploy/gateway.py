"""The gateway role: refnode's gateway (a container or a unit), signing with the first gateway
key."""

from __future__ import annotations

from pyinfra.api import deploy

from shakedown.deploy import docker, systemd
from shakedown.deploy.chain import contracts_ready
from shakedown.deploy.node import PEER_WAIT_S, Env, contracts_of, log_tail
from shakedown.deploy.steps import after, step
from shakedown.errors import TimeoutExpired
from shakedown.keys import gateway as gateway_key
from shakedown.keys import key_hex
from shakedown.model import GATEWAY_PORT, HostModel, Images, Testnet
from shakedown.waiting import wait_for


def gateway_env(testnet: Testnet, listen: int, here: HostModel | None = None) -> tuple[Env, Env]:
    contracts = contracts_of(testnet)
    env = (("GATEWAY_CHAIN_RPC", testnet.chain_rpc_internal(here)),
           ("GATEWAY_NODE_REGISTRY", contracts.get("node_registry", "")),
           ("GATEWAY_LISTEN", f"0.0.0.0:{listen}"))
    return env, (("GATEWAY_PAYER_KEY", key_hex(gateway_key(0))),)


def gateway_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    env, secrets = gateway_env(testnet, GATEWAY_PORT)
    return docker.ContainerSpec(
        testnet=testnet.name, service="gateway", image=images.node, network=testnet.network,
        command=("refnode-gateway",), env=env, secret_env=secrets,
        ports=((testnet.ports.gateway, GATEWAY_PORT),), bind=testnet.address,
    )


def gateway_unit(testnet: Testnet, here: HostModel, build: str) -> systemd.UnitSpec:
    env, secrets = gateway_env(testnet, testnet.ports.gateway, here)
    python = f"{systemd.Paths(testnet.name).venv}/bin/python"
    return systemd.UnitSpec(testnet.name, "gateway", (python, "-m", "refnode.gateway"),
                            env=(*env, ("SHAKEDOWN_BUILD", build)), secret_env=secrets)


def gateway_endpoint(testnet: Testnet) -> str:
    host = testnet.role_host("gateway") if testnet.on_hosts else None
    return f"{testnet.reach(host)}:{testnet.ports.gateway}"


def gateway_healthy(testnet: Testnet) -> bool:
    from shakedown.client import GatewayClient

    with GatewayClient(gateway_endpoint(testnet), timeout=2.0) as client:
        client.health()  # raises until the gateway serves
        return True


def wait_gateway_healthy(testnet: Testnet) -> None:
    """The gateway serves (it needs the chain and a canonical node); TimeoutExpired with its log."""
    name = testnet.container("gateway")
    try:
        wait_for(lambda: gateway_healthy(testnet), bool, timeout=testnet.health_timeout,
                 interval=0.3, what=f"{name} gRPC health")
    except TimeoutExpired as e:
        if testnet.on_hosts:
            host = testnet.role_host("gateway").name
            raise TimeoutExpired(f"{e}; see journalctl -u {testnet.unit('gateway')} on {host}") \
                from e
        raise TimeoutExpired(f"{e}; log tail: {log_tail(name)}") from e


def healthy(testnet: Testnet) -> None:
    step(name=f"{testnet.name}: gateway healthy", what="health",
         done=lambda: gateway_healthy(testnet), action=lambda: wait_gateway_healthy(testnet))


@deploy("gateway")
def gateway(testnet: Testnet, images: Images) -> None:
    if testnet.gateways:
        docker.container(name=f"{testnet.name}: gateway container",
                         spec=lambda: gateway_spec(testnet, images))
        healthy(testnet)


@deploy("gateway unit")
def gateway_on_host(testnet: Testnet, here: HostModel, build: str) -> None:
    if testnet.gateways:
        after(name=f"{testnet.name}: contracts for the gateway", timeout=PEER_WAIT_S,
              what=f"{here.name}: the contracts deployed from {testnet.role_host('chain').name}",
              ready=lambda: contracts_ready(testnet))
        systemd.unit(name=f"{testnet.name}: gateway unit",
                     spec=lambda: gateway_unit(testnet, here, build))
        healthy(testnet)
