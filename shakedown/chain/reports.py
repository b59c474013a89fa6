"""Payer-report hashing and signing, byte for byte what PayerReportManager checks.

Pure functions: the node (attesting), the tests (forging) and verify (re-deriving) share them.

    spec = PayerReportSpec(100, 0, 42, 29_000_000, payers_hash(payers, fees), (100, 200, 300))
    signature = spec.sign(node_signer)          # 65 bytes, v = 27/28
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

_FIELDS = ["uint32", "uint64", "uint64", "uint32", "bytes32", "uint32[]"]


def payers_hash(payers: Sequence[str], fees: Sequence[int]) -> bytes:
    """keccak256(abi.encode(address[] payers, uint256[] fees)), the report's payersHash."""
    if len(payers) != len(fees):
        raise ValueError(f"{len(payers)} payers but {len(fees)} fees")
    checksummed = [to_checksum_address(p) for p in payers]
    return keccak(encode(["address[]", "uint256[]"], [checksummed, list(fees)]))


@dataclass(frozen=True)
class PayerReportSpec:
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

    def inner_hash(self) -> bytes:
        """keccak256(abi.encode(...all fields)), the 32 bytes that get personal-signed."""
        return keccak(encode(_FIELDS, list(self.args())))

    def digest(self) -> bytes:
        """The EIP-191 digest the contract runs ecrecover on."""
        return keccak(b"\x19Ethereum Signed Message:\n32" + self.inner_hash())

    def sign(self, signer: LocalAccount) -> bytes:
        """The 65-byte r || s || v attestation by ``signer``."""
        signed = signer.sign_message(encode_defunct(primitive=self.inner_hash()))
        return bytes(signed.signature)
