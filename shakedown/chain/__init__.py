"""The settlement chain: compiled contracts, deployment and typed operations.

addresses = deploy_contracts(w3, admin_account())
chain = Chain(w3, addresses, admin_account())
"""

from shakedown.chain.contracts import Contracts, artifact, load_artifacts
from shakedown.chain.deploy import deploy_contracts
from shakedown.chain.ops import Chain
from shakedown.chain.records import (
    DEFAULT_RATES,
    ContractAddresses,
    NodeRecord,
    PayerReportRecord,
    Rates,
)
from shakedown.chain.reports import PayerReportSpec, ReportDomain, payers_hash, sorted_payers

__all__ = [
    "DEFAULT_RATES",
    "Chain",
    "ContractAddresses",
    "Contracts",
    "NodeRecord",
    "PayerReportRecord",
    "PayerReportSpec",
    "Rates",
    "ReportDomain",
    "artifact",
    "deploy_contracts",
    "load_artifacts",
    "payers_hash",
    "sorted_payers",
]
