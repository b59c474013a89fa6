"""Send locally signed transactions and turn reverts into ChainError with a readable reason.

Keys never leave this process: transactions are signed with eth-account and sent raw, so the
chain's unlocked accounts are never relied on (a remote chain has none).

    receipt = transact(w3, admin, registry.functions.addToNetwork(100), what="addToNetwork(100)")
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import requests
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import TxReceipt

from shakedown.chain.contracts import load_artifacts
from shakedown.errors import ChainError, TimeoutExpired, UnreachableError

T = TypeVar("T")

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


@cache
def _custom_errors() -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (error name, argument types), over every compiled contract."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    for art in load_artifacts().values():
        for item in art.abi:
            if item.get("type") != "error":
                continue
            types = [arg["type"] for arg in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], types)
    return table


def decode_revert(data: str | bytes | None) -> str:
    """A readable reason from revert data: ``NotAdmin(0xabc...)``, a require string, a panic."""
    if data is None:
        return "no revert data"
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if not raw:
        return "reverted without a reason"
    selector, payload = raw[:4], raw[4:]
    try:
        if selector == _ERROR_STRING:
            return decode(["string"], payload)[0]
        if selector == _PANIC:
            return f"panic 0x{decode(['uint256'], payload)[0]:02x}"
        if selector in _custom_errors():
            name, types = _custom_errors()[selector]
            values = decode(types, payload)
            return f"{name}({', '.join(_show(v) for v in values)})"
    except Exception:  # malformed data: report it raw below
        pass
    return f"unknown revert data 0x{raw.hex()}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and Web3.is_address(value):
        return Web3.to_checksum_address(value)
    return str(value)


def _reason(error: Exception) -> str:
    """The reason inside a web3 error; decodes custom-error data when web3 did not."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return decode_revert(data)
    message = getattr(error, "message", None) or str(error)
    return str(message).removeprefix("execution reverted: ")


def guarded(what: str, action: Callable[[], T]) -> T:
    """Run one chain read/write, mapping web3 and transport failures onto our errors."""
    try:
        return action()
    except ContractLogicError as e:
        raise ChainError(f"{what} reverted: {_reason(e)}") from e
    except Web3RPCError as e:
        raise ChainError(f"{what} refused by the chain: {_reason(e)}") from e
    except TimeExhausted as e:
        raise TimeoutExpired(
            f"{what}: no receipt before the deadline ({e}); is the chain mining?"
        ) from e
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise UnreachableError(f"{what}: chain RPC did not answer: {e}") from e


def call(fn: ContractFunction, *, what: str | None = None) -> Any:
    """A view call; a revert raises ChainError naming ``what`` (default: the function name)."""
    return guarded(what or fn.fn_name, fn.call)


def transact(
    w3: Web3,
    sender: LocalAccount,
    fn: ContractFunction | ContractConstructor,
    *,
    what: str,
    timeout: float = 30.0,
) -> TxReceipt:
    """Sign ``fn`` with ``sender``, send it, wait for the receipt; a revert raises ChainError.

    Gas is estimated first, so most reverts surface before anything is sent, with the reason.
    """

    def send() -> TxReceipt:
        params = {
            "from": sender.address,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
        tx: dict[str, Any] = dict(fn.build_transaction(params))  # type: ignore[arg-type]
        signed = sender.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
        if receipt["status"] != 1:
            raise ChainError(
                f"{what} reverted in block {receipt['blockNumber']}: "
                f"{_replay_reason(w3, tx, receipt)}"
            )
        return receipt

    return guarded(what, send)


def _replay_reason(w3: Web3, tx: dict[str, Any], receipt: TxReceipt) -> str:
    """Why a mined transaction failed: replay it as a call on the state before its block."""
    replay = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
    try:
        w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
    except ContractLogicError as e:
        return _reason(e)
    except Exception as e:  # best effort: the status already says it failed
        return f"reason unknown ({type(e).__name__})"
    return "reason unknown (the replay succeeded)"
