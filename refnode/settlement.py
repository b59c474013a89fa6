"""The node's side of the PayerReportManager: read reports, submit with signatures, settle.

Synchronous web3 (the worker runs it in a thread). Transactions are signed with the node's
signer key, which pays their gas; a revert raises ChainRefused with the contract's error.

    chain = ReportChain(rpc_url, manager_address, signer_key)
    index = chain.submit(spec, [(100, sig_a), (200, sig_b)])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3
from web3.exceptions import ContractLogicError

from refnode.chain import abi, artifacts
from refnode.report_spec import ReportDomain, ReportSpec

RECEIPT_TIMEOUT_S = 30.0


class ChainRefused(RuntimeError):
    """The contract reverted; the message is its error, e.g. ``ContinuityBroken(100, 0, 5)``."""


@dataclass(frozen=True)
class OnChainReport:
    """A PayerReportManager entry."""

    index: int
    spec: ReportSpec
    is_settled: bool
    fees_settled: int


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    table = {}
    for contract in artifacts()["contracts"].values():
        for item in contract["abi"]:
            if item.get("type") == "error":
                types = [a["type"] for a in item["inputs"]]
                sig = f"{item['name']}({','.join(types)})"
                table[function_signature_to_4byte_selector(sig)] = (item["name"], types)
    return table


def revert_reason(error: Exception) -> str:
    """``Name(arg, ...)`` from a revert's custom-error data, else web3's message."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        known = _errors().get(raw[:4])
        if known:
            try:
                values = decode(known[1], raw[4:])
                return f"{known[0]}({', '.join(_show(v) for v in values)})"
            except Exception:  # malformed payload: fall back to the message
                pass
    return str(getattr(error, "message", None) or error)


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class ReportChain:
    """One node's handle on the PayerReportManager."""

    def __init__(self, rpc_url: str, manager: str, signer_key: str, timeout: float = 10.0):
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.manager = self.w3.eth.contract(address=Web3.to_checksum_address(manager),
                                            abi=abi("PayerReportManager"))
        self.account = Account.from_key(signer_key)
        self._domain: ReportDomain | None = None

    def domain(self) -> ReportDomain:
        """Chain id and manager address, read once."""
        if self._domain is None:
            self._domain = ReportDomain(int(self.w3.eth.chain_id), self.manager.address)
        return self._domain

    def count(self, originator: int) -> int:
        return int(self.manager.functions.getPayerReportCount(originator).call())

    def get(self, originator: int, index: int) -> OnChainReport:
        r = self.manager.functions.getPayerReport(originator, index).call()
        spec = ReportSpec(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4]),
                          tuple(int(n) for n in r[5]))
        return OnChainReport(index, spec, bool(r[6]), int(r[7]))

    def last_end(self, originator: int) -> tuple[int, int]:
        """(report count, end of the last report): where the next report must start."""
        count = self.count(originator)
        return count, (self.get(originator, count - 1).spec.end_sequence_id if count else 0)

    def submit(self, spec: ReportSpec, signatures: Sequence[tuple[int, bytes]]) -> int:
        """Submit with (node id, signature) pairs; returns the report's index."""
        receipt = self._send(self.manager.functions.submit(
            *spec.args(), [(n, bytes(s)) for n, s in signatures]))
        events = self.manager.events.PayerReportSubmitted().process_receipt(receipt)
        return int(events[0]["args"]["payerReportIndex"])

    def settle(self, originator: int, index: int, payers: Sequence[str],
               fees: Sequence[int]) -> None:
        self._send(self.manager.functions.settle(
            originator, index, [Web3.to_checksum_address(p) for p in payers], list(fees)))

    def _send(self, fn: Any) -> Any:
        sender = self.account.address
        try:
            tx = fn.build_transaction({
                "from": sender, "chainId": self.domain().chain_id,
                "nonce": self.w3.eth.get_transaction_count(sender, "pending")})
        except ContractLogicError as e:  # gas estimation replays the call: the revert shows here
            raise ChainRefused(revert_reason(e)) from e
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S,
                                                           poll_latency=0.1)
        if receipt["status"] != 1:
            raise ChainRefused(f"reverted in block {receipt['blockNumber']}")
        return receipt
