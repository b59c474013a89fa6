"""``shakedown chain ...`` against a real anvil, found through an inventory and its record.

Each command is checked by reading the chain afterwards; bad input gives one line, exit 2,
and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shakedown.chain import Chain, PayerReportSpec, payers_hash, sorted_payers
from shakedown.cli import main
from shakedown.keys import node_owner, payer

Node = Any  # conftest's TestNode


@pytest.fixture
def inventory(tmp_path: Path, chain: Chain, anvil: Any) -> Path:
    """An inventory whose deployment record names the session's anvil and contracts."""
    record = tmp_path / "deployment.json"
    record.write_text(json.dumps({"testnet": "clitest", "chain": {"rpc": anvil.rpc_url},
                                  "contracts": chain.addresses.to_dict()}))
    path = tmp_path / "inventory.py"
    path.write_text(f"hosts = [('@local', {{'testnet': 'clitest', "
                    f"'record_path': {str(record)!r}}})]\n")
    return path


def shakedown(inventory: Path, *args: str) -> int:
    return main(["chain", *args, "-i", str(inventory)])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shakedown: "), err
    return err[0]


def test_fund_payer_mints_approves_and_deposits(inventory: Path, chain: Chain,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    supply = chain.fee_token_supply()
    assert shakedown(inventory, "fund-payer", "payer-3", "5_000") == 0
    assert shakedown(inventory, "fund-payer", payer(4).address.lower(), "700") == 0
    assert chain.payer_balance(payer(3).address) == 5_000
    assert chain.payer_balance(payer(4).address) == 700
    assert chain.fee_token_supply() == supply + 5_700
    chain.mint(payer(3).address, 300)
    assert shakedown(inventory, "deposit", "payer-3", "300") == 0
    assert chain.payer_balance(payer(3).address) == 5_300
    capsys.readouterr()
    assert shakedown(inventory, "balances", "payer-3", "node-100") == 0
    out = capsys.readouterr().out
    assert f"payer-3 {payer(3).address}" in out and " 5300 " in out, out
    assert f"node-100 {node_owner(0).address}" in out, out
    assert shakedown(inventory, "balances") == 0, "everyone with a balance, and the contracts"
    out = capsys.readouterr().out
    assert f"payer-3 {payer(3).address}" in out and f"payer-4 {payer(4).address}" in out, out
    assert f"payer_registry {chain.addresses.payer_registry}" in out, out


def test_withdrawal_respects_the_lock(inventory: Path, chain: Chain,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    chain.fund_payer(payer(5), 1_000)
    assert shakedown(inventory, "withdraw-request", "payer-5", "400") == 0
    assert shakedown(inventory, "withdraw-cancel", "payer-5") == 0
    assert chain.pending_withdrawal(payer(5).address) == (0, 0)
    assert shakedown(inventory, "withdraw-request", "payer-5", "400") == 0
    capsys.readouterr()
    assert shakedown(inventory, "withdraw-finalize", "payer-5") == 2
    assert "unlocks in" in one_error_line(capsys)
    assert chain.fee_token_balance(payer(5).address) == 0
    assert shakedown(inventory, "withdraw-finalize", "payer-5", "--advance-time") == 0
    assert chain.fee_token_balance(payer(5).address) == 400
    assert chain.payer_balance(payer(5).address) == 600


def test_fees_flow_from_excess_to_claim_to_withdrawal(
        inventory: Path, chain: Chain, nodes: list[Node],
        capsys: pytest.CaptureFixture[str]) -> None:
    chain.fund_payer(payer(0), 10_000)
    chain.fund_payer(payer(1), 10_000)
    payers, fees = sorted_payers({payer(0).address: 600, payer(1).address: 401})
    spec = PayerReportSpec(100, 0, 10, 29_000_000, payers_hash(payers, fees), (100, 200, 300))
    domain = chain.report_domain()
    index = chain.submit_payer_report(spec, [(n.node_id, spec.sign(n.signer, domain))
                                             for n in nodes[:2]])
    chain.settle_payer_report(100, index, payers, fees)
    assert shakedown(inventory, "send-excess") == 0
    assert chain.fee_token_balance(chain.addresses.distribution_manager) == 1001
    assert shakedown(inventory, "claim", "node-200") == 0
    assert chain.owed_fees(200) == 333
    assert shakedown(inventory, "claim", "200") == 0, "nothing left to claim is not an error"
    assert "no settled report left" in capsys.readouterr().out
    assert shakedown(inventory, "withdraw", "node-200") == 0
    assert chain.fee_token_balance(node_owner(1).address) == 333
    assert shakedown(inventory, "claim", "node-100", "--report", "100:0") == 0
    assert chain.owed_fees(100) == 333
    assert shakedown(inventory, "reports") == 0
    assert "True" in capsys.readouterr().out


def test_canonical_network_and_rates(inventory: Path, chain: Chain, nodes: list[Node]) -> None:
    assert shakedown(inventory, "node-remove", "node-300") == 0
    assert chain.canonical_node_ids() == [100, 200]
    assert shakedown(inventory, "node-add", "300") == 0
    assert chain.canonical_node_ids() == [100, 200, 300]
    before = chain.rates()[-1]
    assert shakedown(inventory, "rates", "set", "message_fee=2000", "start=+10s") == 0
    after = chain.rates()[-1]
    assert (after.message_fee, after.storage_fee) == (2000, before.storage_fee)
    assert after.start_time > before.start_time


@pytest.mark.parametrize(("args", "says"), [
    (["fund-payer", "payer-0", "ten"], "positive whole number"),
    (["fund-payer", "payer-0", "0"], "positive whole number"),
    (["fund-payer", "bob", "10"], "name a local key"),
    (["deposit", "0x0000000000000000000000000000000000000001", "10"], "name a local key"),
    (["claim", "node-150"], "multiples of 100"),
    (["claim", "node-100", "--report", "100"], "ORIGINATOR:INDEX"),
    (["rates", "set", "speed=3"], "name=value"),
    (["withdraw-finalize", "payer-9"], "no pending withdrawal"),
    (["withdraw-request", "payer-9", "10"], "InsufficientBalance"),
    (["withdraw", "node-900"], "NodeNotFound"),
], ids=["word", "zero", "unknown-party", "address-cannot-sign", "node-id", "report-key",
        "rate-field", "nothing-pending", "revert", "unknown-node"])
def test_bad_input_is_one_line_and_exit_2(inventory: Path, chain: Chain, args: list[str],
                                          says: str, capsys: pytest.CaptureFixture[str]) -> None:
    block = chain.w3.eth.block_number
    assert shakedown(inventory, *args) == 2
    assert says in one_error_line(capsys)
    assert chain.w3.eth.block_number == block, "nothing was sent"


BIG = "1" + "0" * 80  # beyond uint256
PAST_UINT32 = "4294967300"  # a multiple of 100 beyond uint32, the contracts' node ids
PAST_UINT64 = "18446744073709551616"


@pytest.mark.parametrize(("args", "says"), [
    (["fund-payer", "payer-0", BIG], "at most 2**256-1"),
    (["fund-payer", "0x" + "11" * 20, BIG], "at most 2**256-1"),
    (["deposit", "payer-0", BIG], "at most 2**256-1"),
    (["withdraw-request", "payer-0", BIG], "at most 2**256-1"),
    (["fund-payer", "payer-0", "10_"], "positive whole number"),
    (["deposit", "payer-0", "1__0"], "positive whole number"),
    (["claim", f"node-{PAST_UINT32}"], "at most 4294967200"),
    (["claim", "node-100", "--report", f"100:{BIG}"], "report index"),
    (["claim", "node-100", "--report", f"{PAST_UINT32}:0"], "at most 4294967200"),
    (["withdraw", PAST_UINT32], "at most 4294967200"),
    (["node-add", f"node-{PAST_UINT32}"], "at most 4294967200"),
    (["node-remove", PAST_UINT32], "at most 4294967200"),
    (["reports", "--originator", PAST_UINT32], "at most 4294967200"),
    (["rates", "set", f"message_fee={PAST_UINT64}"], "at most 2**64-1"),
    (["rates", "set", f"target_rate={BIG}"], "at most 2**64-1"),
    (["rates", "set", f"start={PAST_UINT64}"], "at most 2**64-1"),
    (["rates", "set", f"start=+{BIG}s"], "at most 2**64-1"),
    (["rates", "set", "start=+"], "whole number"),
    (["withdraw-finalize", "payer-0", "--to", "0x1234"], "is not an address"),
    (["balances", "0x" + "zz" * 20], "is not an address"),
    (["balances", "payer-99"], "no anvil key for payer #99"),
])
def test_values_out_of_range_are_one_line_in_every_subcommand(
        inventory: Path, chain: Chain, args: list[str], says: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Numbers the contracts' types cannot hold, and parties that do not exist: refused
    before anything is sent, one line, exit 2 (not a web3 traceback)."""
    block = chain.w3.eth.block_number
    assert shakedown(inventory, *args) == 2
    assert says in one_error_line(capsys)
    assert chain.w3.eth.block_number == block, "nothing was sent"


def test_a_testnet_without_a_record_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"hosts = [('@local', {{'testnet': 'nothing', "
                         f"'record_path': {str(tmp_path / 'none.json')!r}}})]\n")
    assert shakedown(inventory, "balances") == 2
    assert "no deployment record" in one_error_line(capsys)
