"""Plain records of on-chain state; a leaf module (it imports only errors and refnode.chain).

NodeRecord and Rates are refnode's own, so the node and the tool read the chain alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from eth_utils import to_checksum_address

from refnode.chain import NodeRecord, Rates
from shakedown.errors import ConfigError

__all__ = [
    "DEFAULT_RATES",
    "Balances",
    "ContractAddresses",
    "NodeRecord",
    "PayerReportRecord",
    "Rates",
]


@dataclass(frozen=True)
class ContractAddresses:
    """Where the settlement contracts live; the deployment record stores ``to_dict()``."""

    node_registry: str
    rate_registry: str
    fee_token: str
    payer_registry: str
    payer_report_manager: str
    distribution_manager: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContractAddresses:
        """Build from a record (addresses checksummed); unknown keys are ignored."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ConfigError(f"contract addresses lack {', '.join(missing)}")
        values = {}
        for f in fields(cls):
            try:
                values[f.name] = to_checksum_address(str(data[f.name]))
            except ValueError as e:
                raise ConfigError(f"{f.name}: not an address: {data[f.name]!r}") from e
        return cls(**values)


DEFAULT_RATES = Rates()


@dataclass(frozen=True)
class PayerReportRecord:
    """A PayerReportManager entry."""

    originator_node_id: int
    start_sequence_id: int
    end_sequence_id: int
    end_minute_since_epoch: int
    payers_hash: bytes
    node_ids: tuple[int, ...]
    is_settled: bool
    fees_settled: int


@dataclass(frozen=True)
class Balances:
    """What one address holds: in the PayerRegistry (signed: negative is debt), in a pending
    withdrawal (and from when it may be finalized, unix seconds; 0 when none), in FeeToken
    base units (picodollars) and in gas (wei)."""

    address: str
    payer_registry: int
    pending_withdrawal: int
    withdrawable_at: int
    fee_token: int
    gas_wei: int
