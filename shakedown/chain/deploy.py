"""Deploy and wire the settlement contracts.

Order follows the constructor dependencies: NodeRegistry, RateRegistry, FeeToken,
PayerRegistry(token), PayerReportManager(node registry, payer registry),
DistributionManager(node registry, report manager, token); then the PayerRegistry learns its
settler and fee distributor, and the first rates (startTime 0) are added.

    addresses = deploy_contracts(w3, admin_account(), withdraw_lock_period=5)
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from shakedown.chain.contracts import artifact
from shakedown.chain.records import DEFAULT_RATES, ContractAddresses, Rates
from shakedown.chain.tx import transact
from shakedown.errors import ChainError

__all__ = ["ContractAddresses", "deploy_contract", "deploy_contracts"]


def deploy_contract(w3: Web3, deployer: LocalAccount, name: str, *args: object) -> ChecksumAddress:
    """Deploy one compiled contract; returns its checksum address."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = transact(w3, deployer, factory.constructor(*args), what=f"deploy {name}")
    address = receipt["contractAddress"]
    if address is None:
        raise ChainError(f"deploy {name}: receipt carries no contract address")
    return Web3.to_checksum_address(address)


def deploy_contracts(
    w3: Web3,
    admin: LocalAccount,
    *,
    withdraw_lock_period: int = 60,
    rates: Rates = DEFAULT_RATES,
) -> ContractAddresses:
    """Deploy all six contracts with ``admin`` as their admin, wire them, add ``rates``."""
    node_registry = deploy_contract(w3, admin, "NodeRegistry", admin.address)
    rate_registry = deploy_contract(w3, admin, "RateRegistry", admin.address)
    fee_token = deploy_contract(w3, admin, "FeeToken")
    payer_registry = deploy_contract(
        w3, admin, "PayerRegistry", admin.address, fee_token, withdraw_lock_period
    )
    payer_report_manager = deploy_contract(
        w3, admin, "PayerReportManager", node_registry, payer_registry
    )
    distribution_manager = deploy_contract(
        w3, admin, "DistributionManager", node_registry, payer_report_manager, fee_token
    )

    registry = w3.eth.contract(address=payer_registry, abi=artifact("PayerRegistry").abi)
    transact(
        w3,
        admin,
        registry.functions.setSettler(payer_report_manager),
        what="PayerRegistry.setSettler",
    )
    transact(
        w3,
        admin,
        registry.functions.setFeeDistributor(distribution_manager),
        what="PayerRegistry.setFeeDistributor",
    )
    rate_contract = w3.eth.contract(address=rate_registry, abi=artifact("RateRegistry").abi)
    transact(
        w3, admin, rate_contract.functions.addRates(*rates.as_args()), what="RateRegistry.addRates"
    )

    return ContractAddresses(
        node_registry=node_registry,
        rate_registry=rate_registry,
        fee_token=fee_token,
        payer_registry=payer_registry,
        payer_report_manager=payer_report_manager,
        distribution_manager=distribution_manager,
    )
