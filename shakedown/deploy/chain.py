"""The chain role: anvil in a container, then the settlement contracts and the record."""

from __future__ import annotations

from pyinfra.api import deploy
from web3 import Web3

from shakedown.chain.deploy import deploy_contracts
from shakedown.deploy import docker, record
from shakedown.deploy.steps import step
from shakedown.keys import ANVIL_ACCOUNT_COUNT, ANVIL_MNEMONIC, admin_account
from shakedown.model import ANVIL_PORT, Images, Testnet
from shakedown.waiting import wait_for


def chain_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    """anvil with the well-known mnemonic; both anvil images take a shell command line."""
    line = (f"anvil --quiet --host 0.0.0.0 --port {ANVIL_PORT} --chain-id {record.CHAIN_ID}"
            f" --accounts {ANVIL_ACCOUNT_COUNT} --mnemonic '{ANVIL_MNEMONIC}'")
    return docker.ContainerSpec(
        testnet=testnet.name, service="chain", image=images.anvil, network=testnet.network,
        command=(line,), ports=((testnet.ports.chain, ANVIL_PORT),),
    )


def web3_for(testnet: Testnet, timeout: float = 5.0) -> Web3:
    """web3 over the chain's 127.0.0.1 host port."""
    url = f"http://127.0.0.1:{testnet.ports.chain}"
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def contracts_present(testnet: Testnet) -> bool:
    """The record names contracts and the chain has code at the NodeRegistry's address."""
    data = record.load_record(testnet.record_path)
    if not data or not data.get("contracts"):
        return False
    w3 = web3_for(testnet, timeout=2.0)
    return len(w3.eth.get_code(data["contracts"]["node_registry"])) > 0


def deploy_and_record(testnet: Testnet) -> None:
    """Wait for anvil, deploy the contracts, write the deployment record."""
    w3 = web3_for(testnet, timeout=30.0)
    wait_for(lambda: w3.eth.chain_id, lambda cid: cid == record.CHAIN_ID, timeout=60,
             what=f"{testnet.container('chain')} chain id", interval=0.2)
    addresses = deploy_contracts(w3, admin_account())
    record.write_record(testnet.record_path, record.build_record(testnet, addresses.to_dict()))


@deploy("chain")
def chain(testnet: Testnet, images: Images) -> None:
    docker.container(name=f"{testnet.name}: chain container", spec=chain_spec(testnet, images))
    step(name=f"{testnet.name}: settlement contracts", what="contracts",
         done=lambda: contracts_present(testnet), action=lambda: deploy_and_record(testnet))
