"""Each payer check fails, alone, on the corruption it exists for.

One testnet for the module with payer reports every 2 s (prefix ``sdp``): traffic from every
node and the gateway, waited on until every originator's envelopes are settled on the chain.
Each test corrupts real state (SQL on a node's database, anvil storage), runs the suite as a
user does, and puts the state back even when it fails; the last test shows it was put back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import docker
import pytest
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from refnode.report_spec import ReportSpec
from shakedown.chain.ops import Chain
from shakedown.keys import node_owner
from shakedown.verify import payer
from shakedown.verify.payer import settlement_charges
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net
from tests.verify.corrupt import NODES, chain_of, sql
from tests.verify.nets import (
    REPORTS_EVERY_2S,
    all_settled,
    converged,
    fresh_testnet,
    gateway_ready,
    send_traffic,
)
from tests.verify.suite import Summary

Verify = Callable[..., Summary]
ALL_NODES = ("node-100", "node-200", "node-300")
PER_NODE = ("test_no_report_stuck", "test_reports_have_quorum",
            "test_settled_reports_match_chain", "test_reports_agree_with_envelopes")
PAYER_CHECKS = {f"{c}[{n}]" for c in PER_NODE for n in ALL_NODES} | {
    "test_payer_balances", "test_fee_token_supply", "test_fee_distribution"}
STRANGER = to_checksum_address("0x" + "5d" * 20)  # funded only here: no report charges it


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(lambda _prefix: make_net("sdp", node_env=REPORTS_EVERY_2S),
                       docker_client) as up:
        gateway_ready(up)
        send_traffic(up, 150)
        converged(up)
        wait_for(lambda: all_settled(up), bool, timeout=120, interval=1,
                 what=f"{up.name}: every originator's envelopes settled")
        chain_of(up).fund_payer(STRANGER, 1_000_000)
        fees_paid_out(up)
        yield up


def fees_paid_out(net: Net) -> None:
    """The charged payers pay their debt, the excess goes to the DistributionManager, and
    node-100 claims and withdraws its share: every path of the fee books is used."""
    chain = chain_of(net)
    for payer_address in sorted({p for c in settlement_charges(chain).values() for p in c}):
        chain.fund_payer(to_checksum_address(payer_address), 10**9)
    assert chain.send_excess_to_fee_distributor() > 0
    owner = node_owner(0)
    assert chain.claim(owner, 100, chain.claimable_reports(100)) > 0
    assert chain.withdraw(owner, 100) > 0


def _settled_row(net: Net, node_id: int, originator: int) -> tuple[bytes, int, int, int]:
    """(id, start, end, index) of the last settled report of ``originator`` on the node."""
    ((report_id, start, end, index),) = sql(
        net, node_id, "SELECT id, start_sequence_id, end_sequence_id, submitted_report_index "
        "FROM payer_reports WHERE originator_node_id = %s AND submission_status = 2 "
        "ORDER BY submitted_report_index DESC LIMIT 1", (originator,))
    return bytes(report_id), int(start), int(end), int(index)


@contextmanager
def old_pending_report(net: Net, node_id: int) -> Iterator[ReportSpec]:
    """An own report of the node, pending for an hour, over envelopes no peer holds yet (so
    peers answer 'not yet' and it stays pending)."""
    chain = chain_of(net)
    start = 1_000_000_000
    spec = ReportSpec(node_id, start, start + 1, 29_000_000, keccak(b"stuck"), NODES)
    report_id = spec.digest(chain.report_domain())
    sql(net, node_id, "INSERT INTO payer_reports (id, originator_node_id, start_sequence_id, "
        "end_sequence_id, end_minute_since_epoch, payers_merkle_root, active_node_ids, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now() - interval '1 hour')",
        (report_id, node_id, start, start + 1, spec.end_minute_since_epoch, spec.payers_hash,
         list(NODES)))
    try:
        yield spec
    finally:
        for n in NODES:
            sql(net, n, "DELETE FROM payer_report_attestations WHERE payer_report_id = %s",
                (report_id,))
            sql(net, n, "DELETE FROM payer_reports WHERE id = %s", (report_id,))


@contextmanager
def attestations_left(net: Net, node_id: int, report_id: bytes, keep: int) -> Iterator[None]:
    """Every attestation of one report but ``keep``'s gone from the node's database."""
    saved = sql(net, node_id, "SELECT node_id, signature, created_at FROM "
                "payer_report_attestations WHERE payer_report_id = %s AND node_id <> %s",
                (report_id, keep))
    assert saved, "no attestation to delete"
    sql(net, node_id, "DELETE FROM payer_report_attestations WHERE payer_report_id = %s AND "
        "node_id <> %s", (report_id, keep))
    try:
        yield
    finally:
        for signer, signature, created in saved:
            sql(net, node_id, "INSERT INTO payer_report_attestations VALUES (%s, %s, %s, %s)",
                (report_id, signer, signature, created))


@contextmanager
def shifted_end(net: Net, node_id: int, report_id: bytes, delta: int) -> Iterator[None]:
    statement = ("UPDATE payer_reports SET end_sequence_id = end_sequence_id + %s "
                 "WHERE id = %s")
    sql(net, node_id, statement, (delta, report_id))
    try:
        yield
    finally:
        sql(net, node_id, statement, (-delta, report_id))


def _mapping_slot(key: str, slot: int) -> str:
    return "0x" + keccak(bytes.fromhex(key[2:].rjust(64, "0")) + slot.to_bytes(32, "big")).hex()


@contextmanager
def storage_moved(chain: Chain, contract: str, slot: str, delta: int) -> Iterator[None]:
    """One storage word of a contract moved by ``delta`` (anvil_setStorageAt), then back."""
    def move(by: int) -> None:
        word = chain.w3.eth.get_storage_at(contract, slot)  # type: ignore[arg-type]
        value = (int.from_bytes(word, "big") + by) % 2**256
        reply = chain.w3.provider.make_request(  # type: ignore[arg-type]
            "anvil_setStorageAt", [contract, slot, "0x" + value.to_bytes(32, "big").hex()])
        assert reply.get("result") is True, reply

    move(delta)
    try:
        yield
    finally:
        move(-delta)


def test_clean_testnet_passes_with_reports(verify: Verify) -> None:
    result = verify()
    assert result.process.returncode == 0, result.process.stdout[-3000:]
    assert PAYER_CHECKS <= set(result.checks)
    assert result.failed() == set()


def test_stuck_check_catches_old_pending_report(net: Net, verify: Verify) -> None:
    with old_pending_report(net, 200):
        result = verify("-m", "payer")
    result.only_failed({"test_no_report_stuck[node-200]"},
                       "node-200: originator 200 report (1000000000, 1000000001]",
                       "pending submission for 3", "threshold 300 s")


def test_stuck_threshold_is_an_option(net: Net, verify: Verify) -> None:
    with old_pending_report(net, 300):
        result = verify("-m", "payer", "--report-stuck-after=7200")
    assert result.failed() == set(), result.process.stdout[-3000:]


def test_quorum_check_catches_deleted_attestations(net: Net, verify: Verify) -> None:
    report_id, start, end, index = _settled_row(net, 100, 100)
    with attestations_left(net, 100, report_id, keep=100):
        result = verify("-m", "payer")
    result.only_failed({"test_reports_have_quorum[node-100]"},
                       f"node-100: originator 100 report ({start}, {end}], index {index}",
                       "valid signatures of nodes [100] only", "quorum is 2")


def test_settled_check_catches_altered_range(net: Net, verify: Verify) -> None:
    report_id, start, end, index = _settled_row(net, 300, 200)
    with shifted_end(net, 300, report_id, -1):
        result = verify("-m", "payer")
    # the shortened report no longer matches its envelopes either
    result.only_failed({"test_settled_reports_match_chain[node-300]"},
                       f"node-300: originator 200 report ({start}, {end - 1}], index {index}",
                       f"range ({start}, {end - 1}) but on the chain ({start}, {end})",
                       also=frozenset({"test_reports_agree_with_envelopes[node-300]"}))


def test_balance_check_catches_forged_balance(net: Net, verify: Verify) -> None:
    chain = chain_of(net)
    slot = _mapping_slot(STRANGER, 2)  # PayerRegistry._balances
    with storage_moved(chain, chain.addresses.payer_registry, slot, 7):
        result = verify("-m", "payer")
    result.only_failed({"test_payer_balances"},
                       f"payer {STRANGER}: balance 1000007", "make 1000000")


def test_supply_check_catches_forged_token_balance(net: Net, verify: Verify) -> None:
    chain = chain_of(net)
    slot = _mapping_slot(chain.addresses.payer_registry, 1)  # FeeToken.balanceOf
    registry = to_checksum_address(chain.addresses.payer_registry)
    with storage_moved(chain, chain.addresses.fee_token, slot, 5):
        result = verify("-m", "payer")
    result.only_failed({"test_fee_token_supply"}, f"FeeToken holder {registry} holds",
                       "holders hold")


def test_distribution_check_catches_forged_protocol_fees(net: Net, verify: Verify) -> None:
    chain = chain_of(net)
    before = chain.protocol_fees()
    slot = "0x" + (4).to_bytes(32, "big").hex()  # DistributionManager.protocolFees
    with storage_moved(chain, chain.addresses.distribution_manager, slot, 3):
        assert chain.protocol_fees() == before + 3
        result = verify("-m", "payer")
    result.only_failed({"test_fee_distribution"}, f"protocol fees are {before + 3}",
                       "settlement accrued", "still owes")


def test_state_was_put_back(verify: Verify) -> None:
    result = verify("-m", "payer")
    assert result.failed() == set(), result.process.stdout[-3000:]


def test_balance_check_reads_one_block_while_the_chain_moves(net: Net) -> None:
    """A deposit mined between the check's event reads and its totals (as a node's settlement
    can be while verify runs) is not a discrepancy: every read is at the block it began at."""
    chain, mover = chain_of(net), chain_of(net)  # the mover's own connection is not pinned
    newcomer = to_checksum_address("0x" + "5e" * 20)
    read_totals = chain.payer_registry_totals

    def totals_after_a_deposit() -> dict[str, int]:
        mover.fund_payer(newcomer, 1_000)
        return read_totals()

    chain.payer_registry_totals = totals_after_a_deposit  # type: ignore[method-assign]
    assert payer.check_balances(chain) == []
    assert mover.payer_balance(newcomer) == 1_000  # the deposit did land meanwhile
