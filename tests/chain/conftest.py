"""One real anvil and one deployment per session; every test runs inside an evm snapshot.

Session fixtures are set up before the per-test snapshot is taken, so they persist; whatever a
test does (including deploying a fresh set with ``fresh_chain``) is reverted after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shakedown.chain import Chain, ContractAddresses, deploy_contracts
from shakedown.keys import admin_account, node_owner, node_signer
from shakedown.procs.anvil import AnvilProcess

WITHDRAW_LOCK_PERIOD = 60


@dataclass(frozen=True)
class TestNode:
    """A registered node and the keys that act for it."""

    __test__ = False  # not a test class, despite the name

    node_id: int
    owner: LocalAccount
    signer: LocalAccount


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}))


@pytest.fixture(scope="session")
def addresses(w3: Web3) -> ContractAddresses:
    return deploy_contracts(w3, admin_account(), withdraw_lock_period=WITHDRAW_LOCK_PERIOD)


@pytest.fixture(scope="session")
def chain(w3: Web3, addresses: ContractAddresses) -> Chain:
    return Chain(w3, addresses, admin_account())


@pytest.fixture(scope="session")
def nodes(chain: Chain) -> list[TestNode]:
    """Three canonical nodes, 100, 200 and 300, so the quorum is 2."""
    registered = []
    for n in range(3):
        owner, signer = node_owner(n), node_signer(n)
        node_id = chain.register_node(owner.address, signer.address, f"node-{n}:5050")
        chain.add_to_network(node_id)
        registered.append(TestNode(node_id, owner, signer))
    return registered


@pytest.fixture(autouse=True)
def isolate(w3: Web3) -> Iterator[None]:
    """Revert the chain to its state before the test (evm_snapshot / evm_revert)."""
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    reverted = w3.provider.make_request("evm_revert", [snapshot])["result"]
    assert reverted, f"evm_revert({snapshot}) failed; later tests would see this test's state"


@pytest.fixture
def fresh_chain(isolate: None, w3: Web3) -> Chain:
    """A deployment of its own, for tests that need empty registries."""
    admin = admin_account()
    return Chain(w3, deploy_contracts(w3, admin, withdraw_lock_period=WITHDRAW_LOCK_PERIOD), admin)


@pytest.fixture
def advance_time(w3: Web3) -> Callable[[int], int]:
    """Move chain time forward and mine a block; returns the new block's timestamp."""

    def advance(seconds: int) -> int:
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])
        return int(w3.eth.get_block("latest")["timestamp"])

    return advance
