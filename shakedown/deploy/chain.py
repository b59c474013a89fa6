"""The chain role: anvil (a container or a unit), then the settlement contracts and the record."""

from __future__ import annotations

import shlex

from pyinfra.api import deploy
from web3 import Web3

from shakedown.chain.deploy import deploy_contracts
from shakedown.deploy import docker, record, systemd
from shakedown.deploy.steps import announce, announced, plan_announcement, planned, step
from shakedown.keys import ANVIL_ACCOUNT_COUNT, ANVIL_MNEMONIC, admin_account
from shakedown.model import ANVIL_PORT, Images, Testnet
from shakedown.waiting import wait_for


def anvil_args(port: int) -> tuple[str, ...]:
    """anvil with the well-known mnemonic, listening on every address at ``port``."""
    return ("--quiet", "--host", "0.0.0.0", "--port", str(port),
            "--chain-id", str(record.CHAIN_ID), "--accounts", str(ANVIL_ACCOUNT_COUNT),
            "--mnemonic", ANVIL_MNEMONIC)


# Where the container's anvil keeps its state across a stop or restart (not a recreate).
ANVIL_STATE = "/tmp/anvil-state.json"


def chain_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    """Both anvil images take a shell command line. ``exec`` makes anvil PID 1, so docker
    stop's SIGTERM reaches it (no 10 s wait for a SIGKILL) and it dumps its state, which it
    loads again at the next start: a chain restart keeps contracts, balances and logs."""
    args = ("anvil", *anvil_args(ANVIL_PORT), "--state", ANVIL_STATE)
    line = "exec " + " ".join(shlex.quote(a) for a in args)
    return docker.ContainerSpec(
        testnet=testnet.name, service="chain", image=images.anvil, network=testnet.network,
        command=(line,), ports=((testnet.ports.chain, ANVIL_PORT),), bind=testnet.address,
    )


def chain_unit(testnet: Testnet) -> systemd.UnitSpec:
    """The anvil binary the deploy put in the testnet's bin directory, on the chain port."""
    binary = f"{systemd.Paths(testnet.name).bin}/anvil"
    return systemd.UnitSpec(testnet.name, "chain", (binary, *anvil_args(testnet.ports.chain)))


def chain_rpc(testnet: Testnet) -> str:
    """The chain's RPC as the controller reaches it."""
    host = testnet.role_host("chain") if testnet.on_hosts else None
    return f"http://{testnet.reach(host)}:{testnet.ports.chain}"


def web3_for(testnet: Testnet, timeout: float = 5.0) -> Web3:
    return Web3(Web3.HTTPProvider(chain_rpc(testnet), request_kwargs={"timeout": timeout}))


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


def contracts(testnet: Testnet) -> None:
    step(name=f"{testnet.name}: settlement contracts", what="contracts",
         done=lambda: contracts_present(testnet), action=lambda: deploy_and_record(testnet))


def _chain_key(testnet: Testnet) -> str:
    return f"{testnet.name}: contracts on the chain"


def contracts_ready(testnet: Testnet) -> bool:
    """What units that name the contracts wait for on other hosts: the chain's host of this
    run announced them (after restarting anvil, if it did); when no host of this run deploys
    the chain (one role's script), the recorded contracts answer on the chain."""
    key = _chain_key(testnet)
    return announced(key) if planned(key) else contracts_present(testnet)


@deploy("chain")
def chain(testnet: Testnet, images: Images) -> None:
    docker.container(name=f"{testnet.name}: chain container", spec=chain_spec(testnet, images))
    contracts(testnet)


@deploy("chain unit")
def chain_on_host(testnet: Testnet) -> None:
    from pyinfra.operations import files

    from shakedown.images.build import repo_root
    from shakedown.images.context import ANVIL_BINARY

    files.put(name=f"{testnet.name}: anvil binary", src=str(repo_root() / ANVIL_BINARY),
              dest=f"{systemd.Paths(testnet.name).bin}/anvil", mode="755")
    systemd.unit(name=f"{testnet.name}: chain unit", spec=chain_unit(testnet))
    contracts(testnet)
    plan_announcement(_chain_key(testnet))
    announce(name=f"{testnet.name}: contracts ready for the other hosts",
             key=_chain_key(testnet))
