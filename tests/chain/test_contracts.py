"""The settlement contracts on a real anvil, driven through shakedown.chain.Chain.

Node membership, rates, payer deposits and withdrawals, payer reports (quorum, signers,
continuity), settlement, excess, fee claims and withdrawals, and token conservation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shakedown.chain import (
    Chain,
    ContractAddresses,
    PayerReportSpec,
    Rates,
    ReportDomain,
    payers_hash,
    sorted_payers,
)
from shakedown.chain.records import DEFAULT_RATES
from shakedown.errors import ChainError, ConfigError, TimeoutExpired, UnreachableError
from shakedown.keys import (
    ANVIL_ACCOUNT_COUNT,
    anvil_account,
    gateway,
    node_owner,
    node_signer,
    payer,
)
from shakedown.procs.anvil import AnvilProcess

# conftest's TestNode: node_id, owner and signer accounts
Node = Any
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def lock_period(chain: Chain) -> int:
    return int(chain.contracts.payer_registry.functions.withdrawLockPeriod().call())


# -- keys and anvil -------------------------------------------------------------------------


def test_anvil_funds_every_role_key(w3: Web3) -> None:
    funded = w3.eth.accounts
    derived = [anvil_account(i).address for i in range(ANVIL_ACCOUNT_COUNT)]
    assert funded == derived, "anvil's accounts differ from shakedown.keys' derivation"
    assert w3.eth.chain_id == 31337
    assert w3.eth.get_balance(gateway(9).address) > 0


def test_anvil_on_a_taken_port_fails_fast_with_the_log(anvil: AnvilProcess) -> None:
    with pytest.raises(UnreachableError, match=f"port 127.0.0.1:{anvil.port} is already in use"):
        AnvilProcess(port=anvil.port, startup_timeout=20).start()


def test_missing_anvil_binary_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAKEDOWN_ANVIL", "/nonexistent/anvil")
    with pytest.raises(ConfigError, match="/nonexistent/anvil"):
        AnvilProcess().start()


def test_anvil_that_never_answers_times_out_with_what_it_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho warming up\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SHAKEDOWN_ANVIL", str(fake))
    process = AnvilProcess(startup_timeout=0.5)
    with pytest.raises(TimeoutExpired, match=r"last seen: .*Connection.*warming up"):
        process.start()
    with pytest.raises(UnreachableError, match="not started"):
        process.rpc_url  # noqa: B018 - the property raises


def test_anvil_that_exits_reports_its_code_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'Error: boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SHAKEDOWN_ANVIL", str(fake))
    with pytest.raises(UnreachableError, match=r"exited with code 3 .*Error: boom"):
        AnvilProcess(startup_timeout=10).start()


def test_contract_addresses_round_trip(addresses: ContractAddresses) -> None:
    lowered = {k: v.lower() for k, v in addresses.to_dict().items()}
    assert ContractAddresses.from_dict(lowered) == addresses
    with pytest.raises(ConfigError, match="fee_token"):
        ContractAddresses.from_dict({**lowered, "fee_token": "0x123"})


# -- nodes ----------------------------------------------------------------------------------


def test_node_ids_are_assigned_in_hundreds(fresh_chain: Chain) -> None:
    ids = [
        fresh_chain.register_node(node_owner(n).address, node_signer(n).address, f"h{n}:1")
        for n in range(3)
    ]
    assert ids == [100, 200, 300]
    node = fresh_chain.get_node(200)
    assert (node.owner, node.signer, node.http_address, node.is_canonical) == (
        node_owner(1).address,
        node_signer(1).address,
        "h1:1",
        False,
    )
    assert [n.node_id for n in fresh_chain.all_nodes()] == [100, 200, 300]


def test_unknown_node_is_not_found(fresh_chain: Chain) -> None:
    with pytest.raises(ChainError, match=r"getNode\(100\) reverted: NodeNotFound\(100\)"):
        fresh_chain.get_node(100)


def test_canonical_membership_follows_add_and_remove(fresh_chain: Chain) -> None:
    for n in range(3):
        fresh_chain.register_node(node_owner(n).address, node_signer(n).address, f"h{n}:1")
    assert fresh_chain.canonical_node_ids() == []
    fresh_chain.add_to_network(100)
    fresh_chain.add_to_network(300)
    fresh_chain.add_to_network(300)  # a second add changes nothing
    assert fresh_chain.canonical_node_ids() == [100, 300]
    registry = fresh_chain.contracts.node_registry.functions
    assert registry.canonicalNodesCount().call() == 2
    fresh_chain.remove_from_network(100)
    fresh_chain.remove_from_network(100)
    assert fresh_chain.canonical_node_ids() == [300]
    assert registry.canonicalNodesCount().call() == 1
    assert (registry.isCanonicalNode(100).call(), registry.isCanonicalNode(300).call()) == (
        False,
        True,
    )
    with pytest.raises(ChainError, match="NodeNotFound"):
        fresh_chain.add_to_network(400)


def test_only_admin_manages_membership(fresh_chain: Chain) -> None:
    fresh_chain.register_node(node_owner(0).address, node_signer(0).address, "h:1")
    outsider = Chain(fresh_chain.w3, fresh_chain.addresses, payer(0))
    with pytest.raises(ChainError, match="NotAdmin"):
        outsider.register_node(payer(0).address, payer(0).address, "h:2")
    with pytest.raises(ChainError, match="NotAdmin"):
        outsider.add_to_network(100)


def test_http_address_may_be_set_by_admin_or_owner_only(fresh_chain: Chain) -> None:
    fresh_chain.register_node(node_owner(0).address, node_signer(0).address, "h:1")
    fresh_chain.set_http_address(100, "by-owner:2", sender=node_owner(0))
    assert fresh_chain.get_node(100).http_address == "by-owner:2"
    fresh_chain.set_http_address(100, "by-admin:3")
    assert fresh_chain.get_node(100).http_address == "by-admin:3"
    for stranger in (node_signer(0), node_owner(1)):
        with pytest.raises(ChainError, match="NotAdminOrOwner"):
            fresh_chain.set_http_address(100, "evil:4", sender=stranger)
    assert fresh_chain.get_node(100).http_address == "by-admin:3"


# -- rates ----------------------------------------------------------------------------------


def test_rates_start_with_the_defaults_and_only_move_forward(chain: Chain) -> None:
    assert chain.rates() == [DEFAULT_RATES]
    later = Rates(message_fee=2000, storage_fee=2, congestion_fee=5, start_time=1_000)
    chain.add_rates(later)
    assert chain.rates() == [DEFAULT_RATES, later]
    page = chain.contracts.rate_registry.functions.getRates(1, 10).call()
    assert [Rates(*r) for r in page] == [later], "a page past the end is cut short"
    with pytest.raises(ChainError, match=r"StartTimeBeforeLast\(999, 1000\)"):
        chain.add_rates(Rates(start_time=999))
    with pytest.raises(ChainError, match="NotAdmin"):
        Chain(chain.w3, chain.addresses, payer(0)).add_rates(Rates(start_time=2_000))


# -- payers ---------------------------------------------------------------------------------


def test_deposit_credits_the_payer(chain: Chain) -> None:
    funder, credited = payer(0), payer(1)
    chain.mint(funder.address, 5_000)
    chain.deposit(funder, 3_000, payer=credited.address)
    assert chain.payer_balance(credited.address) == 3_000
    assert chain.payer_balance(funder.address) == 0
    assert chain.fee_token_balance(funder.address) == 2_000
    assert chain.fee_token_balance(chain.addresses.payer_registry) == 3_000


def test_deposit_without_tokens_reverts(chain: Chain) -> None:
    with pytest.raises(ChainError, match="InsufficientBalance"):
        chain.deposit(payer(2), 1)


def test_withdrawal_waits_for_the_lock_period(chain: Chain, advance_time) -> None:
    p = payer(0)
    chain.fund_payer(p, 10_000)
    unlock = chain.request_withdrawal(p, 4_000)
    assert chain.payer_balance(p.address) == 6_000
    assert chain.pending_withdrawal(p.address) == (4_000, unlock)
    with pytest.raises(ChainError, match="WithdrawalLocked"):
        chain.finalize_withdrawal(p)
    with pytest.raises(ChainError, match="PendingWithdrawalExists"):
        chain.request_withdrawal(p, 1)
    now = advance_time(lock_period(chain))
    assert now >= unlock, f"chain time {now} still before unlock {unlock}"
    recipient = Account.create().address
    assert chain.finalize_withdrawal(p, recipient) == 4_000
    assert chain.fee_token_balance(recipient) == 4_000
    assert chain.pending_withdrawal(p.address) == (0, 0)
    assert chain.payer_registry_totals()["withdrawn"] == 4_000


def test_cancelled_withdrawal_returns_to_the_balance(chain: Chain) -> None:
    p = payer(0)
    chain.fund_payer(p, 1_000)
    chain.request_withdrawal(p, 700)
    chain.cancel_withdrawal(p)
    assert chain.payer_balance(p.address) == 1_000
    with pytest.raises(ChainError, match="NoPendingWithdrawal"):
        chain.finalize_withdrawal(p)
    with pytest.raises(ChainError, match="InsufficientBalance"):
        chain.request_withdrawal(p, 1_001)


# -- payer reports --------------------------------------------------------------------------

# Ascending by address, as settle demands: payer(1) < payer(0).
PAYERS = [payer(1).address, payer(0).address]
FEES = [401, 600]  # 1001: not divisible by 3 nodes


def report(start: int = 0, end: int = 10, fees: list[int] = FEES) -> PayerReportSpec:
    return PayerReportSpec(100, start, end, 29_000_000, payers_hash(PAYERS, fees), (100, 200, 300))


def sigs(
    spec: PayerReportSpec, signers: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return [(n.node_id, spec.sign(n.signer, domain)) for n in signers]


def submit_and_settle(chain: Chain, nodes: list[Node], fees: list[int] = FEES) -> int:
    spec = report(fees=fees)
    index = chain.submit_payer_report(spec, sigs(spec, nodes[:2], chain.report_domain()))
    chain.settle_payer_report(100, index, PAYERS, fees)
    return index


def test_python_digest_matches_the_contract(chain: Chain) -> None:
    spec = report()
    assert chain.payer_report_digest(spec) == spec.digest(chain.report_domain())


def test_digest_is_bound_to_the_chain_and_the_contract(chain: Chain) -> None:
    spec, domain = report(), chain.report_domain()
    other_chain = ReportDomain(domain.chain_id + 1, domain.manager)
    other_manager = ReportDomain(domain.chain_id, chain.addresses.payer_registry)
    digests = {spec.digest(d) for d in (domain, other_chain, other_manager)}
    assert len(digests) == 3, "chain id and manager address must both enter the digest"


def test_attestations_cannot_be_replayed_on_another_deployment(
    chain: Chain, nodes: list[Node], fresh_chain: Chain
) -> None:
    for node in nodes:  # the same nodes, the same keys, the same ids on a second testnet
        fresh_chain.register_node(node.owner.address, node.signer.address, "replay:1")
        fresh_chain.add_to_network(node.node_id)
    spec = report()
    signed_for_first = sigs(spec, nodes[:2], chain.report_domain())
    with pytest.raises(ChainError, match=r"WrongSigner\(100"):
        fresh_chain.submit_payer_report(spec, signed_for_first)
    signed_for_second = sigs(spec, nodes[:2], fresh_chain.report_domain())
    assert fresh_chain.submit_payer_report(spec, signed_for_second) == 0


def test_settle_refuses_an_unsorted_payer_list(chain: Chain, nodes: list[Node]) -> None:
    unsorted, fees = list(reversed(PAYERS)), list(reversed(FEES))
    spec = PayerReportSpec(100, 0, 10, 29_000_000, payers_hash(unsorted, fees), (100, 200, 300))
    index = chain.submit_payer_report(spec, sigs(spec, nodes[:2], chain.report_domain()))
    with pytest.raises(ChainError, match=r"PayersNotSorted\(1, "):
        chain.settle_payer_report(100, index, unsorted, fees)
    assert sorted_payers(dict(zip(unsorted, fees, strict=True))) == (PAYERS, FEES)


def test_submit_with_a_quorum_is_stored(chain: Chain, nodes: list[Node]) -> None:
    domain = chain.report_domain()
    spec = report()
    assert chain.submit_payer_report(spec, sigs(spec, nodes[1:], domain)) == 0
    stored = chain.get_payer_report(100, 0)
    assert (stored.start_sequence_id, stored.end_sequence_id, stored.payers_hash) == (
        0,
        10,
        spec.payers_hash,
    )
    assert stored.node_ids == (100, 200, 300) and not stored.is_settled
    follow_up = report(start=10, end=25)
    assert chain.submit_payer_report(follow_up, sigs(follow_up, nodes, domain)) == 1
    assert chain.payer_report_count(100) == 2


def _forged(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return [(100, spec.sign(nodes[0].signer, domain)), (200, spec.sign(Account.create(), domain))]


def _garbage(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return [(100, spec.sign(nodes[0].signer, domain)), (200, b"\x01" * 64)]


def _malleable(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    """Node 200's valid signature turned into its high-s twin, which recovers the same key."""
    good = spec.sign(nodes[1].signer, domain)
    s = SECP256K1_N - int.from_bytes(good[32:64], "big")
    twin = good[:32] + s.to_bytes(32, "big") + bytes([55 - good[64]])  # 27 <-> 28
    return [(100, spec.sign(nodes[0].signer, domain)), (200, twin)]


def _duplicate(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return sigs(spec, [nodes[0], nodes[0]], domain)


def _too_few(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return sigs(spec, nodes[:1], domain)


def _other_report(
    spec: PayerReportSpec, nodes: list[Node], domain: ReportDomain
) -> list[tuple[int, bytes]]:
    return sigs(report(end=11), nodes[:2], domain)  # signatures over a different range


@pytest.mark.parametrize(
    ("make_signatures", "reason"),
    [
        (_too_few, r"InsufficientSignatures\(1, 2\)"),
        (_duplicate, r"DuplicateSignature\(100\)"),
        (_forged, r"WrongSigner\(200"),
        (_garbage, r"InvalidSignature\(200\)"),
        (_malleable, r"InvalidSignature\(200\)"),
        (_other_report, r"WrongSigner\(100"),
    ],
    ids=["too-few", "duplicate-signer", "forged", "garbage", "malleable", "other-report"],
)
def test_submit_without_a_valid_quorum_reverts(
    chain: Chain, nodes: list[Node], make_signatures, reason: str
) -> None:
    domain = chain.report_domain()
    spec = report()
    with pytest.raises(ChainError, match=reason):
        chain.submit_payer_report(spec, make_signatures(spec, nodes, domain))
    assert chain.payer_report_count(100) == 0


def test_submit_refuses_a_non_canonical_signer(chain: Chain, nodes: list[Node]) -> None:
    domain = chain.report_domain()
    chain.remove_from_network(300)  # two canonical nodes left: the quorum stays 2
    spec = report()
    with pytest.raises(ChainError, match=r"NotCanonical\(300\)"):
        chain.submit_payer_report(spec, sigs(spec, [nodes[0], nodes[2]], domain))
    assert chain.submit_payer_report(spec, sigs(spec, nodes[:2], domain)) == 0


def test_submit_refuses_two_nodes_sharing_a_signer(chain: Chain, nodes: list[Node]) -> None:
    domain = chain.report_domain()
    shared = nodes[0].signer
    twin = chain.register_node(node_owner(3).address, shared.address, "twin:1")
    chain.add_to_network(twin)  # four canonical nodes: the quorum is 3
    spec = report()
    signatures = [
        (100, spec.sign(shared, domain)),
        (twin, spec.sign(shared, domain)),
        *sigs(spec, nodes[1:2], domain),
    ]
    with pytest.raises(ChainError, match=rf"DuplicateSigner\({twin}, {shared.address}\)"):
        chain.submit_payer_report(spec, signatures)
    assert chain.submit_payer_report(spec, sigs(spec, nodes, domain)) == 0


def test_submit_refuses_a_broken_continuity(chain: Chain, nodes: list[Node]) -> None:
    domain = chain.report_domain()
    first = report(start=5, end=10)
    with pytest.raises(ChainError, match=r"ContinuityBroken\(100, 0, 5\)"):
        chain.submit_payer_report(first, sigs(first, nodes, domain))
    chain.submit_payer_report(report(), sigs(report(), nodes, domain))
    gap = report(start=11, end=20)
    with pytest.raises(ChainError, match=r"ContinuityBroken\(100, 10, 11\)"):
        chain.submit_payer_report(gap, sigs(gap, nodes, domain))


def test_settle_with_a_wrong_payer_list_reverts(chain: Chain, nodes: list[Node]) -> None:
    domain = chain.report_domain()
    spec = report()
    index = chain.submit_payer_report(spec, sigs(spec, nodes, domain))
    with pytest.raises(ChainError, match="PayersHashMismatch"):
        chain.settle_payer_report(100, index, PAYERS, [401, 599])
    with pytest.raises(ChainError, match="PayersHashMismatch"):
        chain.settle_payer_report(100, index, list(reversed(PAYERS)), FEES)
    assert not chain.get_payer_report(100, index).is_settled


def test_settle_charges_the_payers(chain: Chain, nodes: list[Node]) -> None:
    chain.fund_payer(payer(0), 10_000)
    chain.fund_payer(payer(1), 100)  # less than its fee: it goes into debt
    index = submit_and_settle(chain, nodes)
    assert chain.payer_balance(payer(0).address) == 10_000 - 600
    assert chain.payer_balance(payer(1).address) == 100 - 401
    settled = chain.get_payer_report(100, index)
    assert (settled.is_settled, settled.fees_settled) == (True, 1001)
    assert chain.payer_registry_totals()["settled"] == 1001
    with pytest.raises(ChainError, match="AlreadySettled"):
        chain.settle_payer_report(100, index, PAYERS, FEES)


def test_payer_in_debt_cannot_finalize_a_withdrawal(
    chain: Chain, nodes: list[Node], advance_time
) -> None:
    chain.fund_payer(payer(1), 500)
    chain.request_withdrawal(payer(1), 400)  # 100 left, the fee is 401
    submit_and_settle(chain, nodes)
    advance_time(lock_period(chain))
    with pytest.raises(ChainError, match=r"PayerInDebt\(.*, -301\)"):
        chain.finalize_withdrawal(payer(1))


def test_excess_is_settled_fees_backed_by_tokens(chain: Chain, nodes: list[Node]) -> None:
    chain.fund_payer(payer(0), 10_000)
    chain.fund_payer(payer(1), 100)
    assert chain.excess() == 0
    submit_and_settle(chain, nodes)
    assert chain.excess() == 600 + 100, "payer 1's debt of 301 is not backed by tokens"
    chain.mint(payer(1).address, 301)
    chain.deposit(payer(1), 301)
    assert chain.excess() == 1001, "a deposit that pays off the debt backs the rest"
    assert chain.send_excess_to_fee_distributor() == 1001
    assert chain.excess() == 0
    assert chain.fee_token_balance(chain.addresses.distribution_manager) == 1001
    assert chain.fee_token_balance(chain.addresses.payer_registry) == 10_000 - 600


def test_claim_splits_fees_exactly(chain: Chain, nodes: list[Node]) -> None:
    chain.fund_payer(payer(0), 10_000)
    chain.fund_payer(payer(1), 10_000)
    index = submit_and_settle(chain, nodes)
    for node in nodes:
        assert chain.claim(node.owner, node.node_id, [(100, index)]) == 333
        assert chain.owed_fees(node.node_id) == 333
    assert chain.protocol_fees() == 2, "1001 = 3 * 333 + 2"
    assert chain.total_owed_fees() + chain.protocol_fees() == 1001
    with pytest.raises(ChainError, match="AlreadyClaimed"):
        chain.claim(nodes[0].owner, 100, [(100, index)])
    assert chain.protocol_fees() == 2, "the remainder is counted once per report"


def test_claim_is_refused_to_strangers_and_unsettled_reports(
    chain: Chain, nodes: list[Node]
) -> None:
    domain = chain.report_domain()
    spec = report()
    index = chain.submit_payer_report(spec, sigs(spec, nodes, domain))
    with pytest.raises(ChainError, match="NotSettled"):
        chain.claim(nodes[0].owner, 100, [(100, index)])
    chain.settle_payer_report(100, index, PAYERS, FEES)
    with pytest.raises(ChainError, match="NotNodeOwner"):
        chain.claim(nodes[1].owner, 100, [(100, index)])
    outsider_id = chain.register_node(node_owner(5).address, node_signer(5).address, "x:1")
    with pytest.raises(ChainError, match="NotInPayerReport"):
        chain.claim(node_owner(5), outsider_id, [(100, index)])


def test_withdraw_pays_the_owner_once_tokens_arrived(chain: Chain, nodes: list[Node]) -> None:
    chain.fund_payer(payer(0), 10_000)
    chain.fund_payer(payer(1), 10_000)
    index = submit_and_settle(chain, nodes)
    owner: LocalAccount = nodes[0].owner
    chain.claim(owner, 100, [(100, index)])
    with pytest.raises(ChainError, match=r"InsufficientTokens\(0, 333\)"):
        chain.withdraw(owner, 100)
    chain.send_excess_to_fee_distributor()
    with pytest.raises(ChainError, match="NotNodeOwner"):
        chain.withdraw(nodes[1].owner, 100)
    assert chain.withdraw(owner, 100) == 333
    assert chain.fee_token_balance(owner.address) == 333
    assert chain.owed_fees(100) == 0
    assert chain.withdraw(owner, 100) == 0, "nothing owed: nothing moves"


def test_token_supply_is_conserved_across_the_whole_flow(
    chain: Chain, nodes: list[Node], advance_time
) -> None:
    payers = [payer(0), payer(1)]
    for p in payers:
        chain.fund_payer(p, 5_000)
    index = submit_and_settle(chain, nodes)
    chain.request_withdrawal(payers[0], 1_000)
    advance_time(lock_period(chain))
    chain.finalize_withdrawal(payers[0])
    chain.send_excess_to_fee_distributor()
    for node in nodes:
        chain.claim(node.owner, node.node_id, [(100, index)])
        chain.withdraw(node.owner, node.node_id)

    holders = [
        *(p.address for p in payers),
        *(n.owner.address for n in nodes),
        chain.addresses.payer_registry,
        chain.addresses.distribution_manager,
    ]
    held = {h: chain.fee_token_balance(h) for h in holders}
    assert chain.fee_token_supply() == 10_000 == sum(held.values()), held
    registry_owes = sum(chain.payer_balance(p.address) for p in payers)
    assert held[chain.addresses.payer_registry] == registry_owes == 10_000 - 1_000 - 1001
    assert held[chain.addresses.distribution_manager] == chain.protocol_fees() == 2
    assert chain.total_owed_fees() == 0
