"""Payer-report fields, hashes and digest, byte for byte what PayerReportManager checks.

A leaf module of pure functions: the node (creating and attesting), shakedown's chain layer
(submitting, forging in tests) and verify (re-deriving) share it.

    domain = ReportDomain(31337, manager_address)
    spec = ReportSpec(100, 0, 42, 29_000_000, payers_hash(payers, fees), (100, 200, 300))
    report_id = spec.digest(domain)     # also payer_reports.id
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

_FIELDS = ["uint256", "address", "uint32", "uint64", "uint64", "uint32", "bytes32", "uint32[]"]
_EIP191 = b"\x19Ethereum Signed Message:\n32"


def payers_hash(payers: Sequence[str], fees: Sequence[int]) -> bytes:
    """keccak256(abi.encode(address[] payers, uint256[] fees)), the report's payersHash.

    The contract settles only strictly ascending payer lists; ``sorted_payers`` makes one.
    """
    if len(payers) != len(fees):
        raise ValueError(f"{len(payers)} payers but {len(fees)} fees")
    checksummed = [to_checksum_address(p) for p in payers]
    return keccak(encode(["address[]", "uint256[]"], [checksummed, list(fees)]))


def sorted_payers(fees: Mapping[str, int]) -> tuple[list[str], list[int]]:
    """(payers, fees) in the contract's order: addresses ascending as numbers, checksummed.

    Example: ``sorted_payers({"0xBB..": 5, "0xaa..": 7}) == (["0xAA..", "0xBB.."], [7, 5])``
    """
    merged: dict[str, int] = {}
    for payer, fee in fees.items():
        key = to_checksum_address(payer)
        merged[key] = merged.get(key, 0) + fee
    payers = sorted(merged, key=lambda a: int(a, 16))
    return payers, [merged[p] for p in payers]


@dataclass(frozen=True)
class ReportDomain:
    """What binds a digest to one testnet: the chain id and the PayerReportManager's address."""

    chain_id: int
    manager: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "manager", to_checksum_address(self.manager))


@dataclass(frozen=True)
class ReportSpec:
    """The signed fields of a payer report (what submit takes, minus the signatures)."""

    originator_node_id: int
    start_sequence_id: int
    end_sequence_id: int
    end_minute_since_epoch: int
    payers_hash: bytes
    node_ids: tuple[int, ...]

    def args(self) -> tuple[int, int, int, int, bytes, list[int]]:
        """Positional arguments for getPayerReportDigest / submit."""
        return (
            self.originator_node_id,
            self.start_sequence_id,
            self.end_sequence_id,
            self.end_minute_since_epoch,
            self.payers_hash,
            list(self.node_ids),
        )

    def inner_hash(self, domain: ReportDomain) -> bytes:
        """keccak256(abi.encode(chainid, manager, ...all fields)): the 32 bytes personal-signed."""
        return keccak(encode(_FIELDS, [domain.chain_id, domain.manager, *self.args()]))

    def digest(self, domain: ReportDomain) -> bytes:
        """The EIP-191 digest the contract runs ecrecover on; refnode's report id too."""
        return keccak(_EIP191 + self.inner_hash(domain))
