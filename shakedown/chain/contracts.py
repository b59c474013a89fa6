"""The compiled contracts (refnode/contracts/artifacts.json) and web3 handles bound to them.

The artifacts ship inside the refnode package, so the node and the tool read one ABI.

    contracts = Contracts.at(w3, addresses)
    contracts.node_registry.functions.canonicalNodesCount().call()
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from web3 import Web3
from web3.contract import Contract

from refnode.chain import artifacts
from shakedown.chain.records import ContractAddresses
from shakedown.errors import NotFoundError

# ContractAddresses field -> contract name in the artifacts, in deploy order.
CONTRACT_NAMES: dict[str, str] = {
    "node_registry": "NodeRegistry",
    "rate_registry": "RateRegistry",
    "fee_token": "FeeToken",
    "payer_registry": "PayerRegistry",
    "payer_report_manager": "PayerReportManager",
    "distribution_manager": "DistributionManager",
}


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


def artifacts_document() -> dict[str, Any]:
    """The raw artifacts.json (compiler, settings, contracts)."""
    return artifacts()


@cache
def load_artifacts() -> dict[str, Artifact]:
    """Every compiled contract by name."""
    return {
        name: Artifact(name, c["abi"], c["bytecode"], c["deployedBytecode"])
        for name, c in artifacts_document()["contracts"].items()
    }


def artifact(name: str) -> Artifact:
    """One contract's artifact; an unknown name raises NotFoundError listing the known ones."""
    found = load_artifacts().get(name)
    if found is None:
        known = ", ".join(sorted(load_artifacts()))
        raise NotFoundError(f"no compiled contract {name!r}; known: {known}")
    return found


@dataclass(frozen=True)
class Contracts:
    """web3 handles for one deployment, one attribute per ContractAddresses field."""

    node_registry: Contract
    rate_registry: Contract
    fee_token: Contract
    payer_registry: Contract
    payer_report_manager: Contract
    distribution_manager: Contract

    @classmethod
    def at(cls, w3: Web3, addresses: ContractAddresses) -> Contracts:
        handles = {
            f.name: w3.eth.contract(
                address=Web3.to_checksum_address(getattr(addresses, f.name)),
                abi=artifact(CONTRACT_NAMES[f.name]).abi,
            )
            for f in fields(cls)
        }
        return cls(**handles)
