"""What a node reads from the settlement chain: membership (NodeRegistry) and prices (RateRegistry).

Reads are plain web3 calls; the node runs them in a thread on a refresh interval and keeps
the last good snapshot when the chain is briefly unreachable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from web3 import Web3


@lru_cache(maxsize=1)
def artifacts() -> dict[str, Any]:
    """The compiled contracts shipped in refnode/contracts/artifacts.json."""
    return json.loads(resources.files("refnode.contracts").joinpath("artifacts.json").read_text())


def abi(contract: str) -> list[dict[str, Any]]:
    return artifacts()["contracts"][contract]["abi"]


@dataclass(frozen=True)
class NodeRecord:
    """A NodeRegistry entry."""

    node_id: int
    owner: str
    signer: str
    is_canonical: bool
    http_address: str


@dataclass(frozen=True)
class Rates:
    """One RateRegistry entry; fees in FeeToken base units (picodollars)."""

    message_fee: int = 1000
    storage_fee: int = 1
    congestion_fee: int = 0
    target_rate_per_minute: int = 1000
    start_time: int = 0

    def as_args(self) -> tuple[int, int, int, int, int]:
        return (self.message_fee, self.storage_fee, self.congestion_fee,
                self.target_rate_per_minute, self.start_time)

    def base_fee(self, size: int, retention_days: int) -> int:
        """Price of one envelope of ``size`` bytes kept ``retention_days`` days."""
        return self.message_fee + self.storage_fee * size * retention_days


FREE = Rates(0, 0, 0, 0, 0)  # before any rates are read: nothing is charged


def rates_at(schedule: list[Rates], unix_seconds: float) -> Rates:
    """The rates in force at a time: the last entry whose start time has passed."""
    current = schedule[0]
    for rates in schedule:
        if rates.start_time <= unix_seconds:
            current = rates
    return current


class ChainReader:
    """Synchronous reads of the two registries a node depends on."""

    def __init__(self, rpc_url: str, node_registry: str, rate_registry: str | None = None,
                 timeout: float = 5.0):
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.nodes = self.w3.eth.contract(address=Web3.to_checksum_address(node_registry),
                                          abi=abi("NodeRegistry"))
        self.rates = (self.w3.eth.contract(address=Web3.to_checksum_address(rate_registry),
                                           abi=abi("RateRegistry")) if rate_registry else None)

    def read_nodes(self) -> dict[int, NodeRecord]:
        return {n[0]: NodeRecord(node_id=n[0], owner=n[1], signer=n[2], is_canonical=n[3],
                                 http_address=n[4])
                for n in self.nodes.functions.getAllNodes().call()}

    def read_rates(self) -> list[Rates]:
        if self.rates is None:
            return [FREE]
        count = self.rates.functions.getRatesCount().call()
        if count == 0:
            return [FREE]
        return [Rates(*r) for r in self.rates.functions.getRates(0, count).call()]
