"""Chain: the operations the tests, the deploy roles and the CLI run against the contracts.

Each write is signed by the party the contract demands (admin, payer, node owner), waits for
its receipt and raises ChainError naming the call and the revert reason.

    chain = Chain(w3, addresses, admin_account())
    node_id = chain.register_node(owner.address, signer.address, "node-100:5050")
    chain.add_to_network(node_id)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from shakedown.chain.contracts import Contracts
from shakedown.chain.records import (
    Balances,
    ContractAddresses,
    NodeRecord,
    PayerReportRecord,
    Rates,
)
from shakedown.chain.reports import PayerReportSpec, ReportDomain
from shakedown.chain.tx import call, guarded, transact
from shakedown.errors import ChainError, ConfigError


class Chain:
    """Typed operations over one deployment; ``admin`` signs the admin-only calls."""

    def __init__(
        self,
        w3: Web3,
        addresses: ContractAddresses,
        admin: LocalAccount,
        *,
        receipt_timeout: float = 30.0,
    ) -> None:
        self.w3 = w3
        self.addresses = addresses
        self.admin = admin
        self.contracts = Contracts.at(w3, addresses)
        self.receipt_timeout = receipt_timeout

    @classmethod
    def connect(
        cls, rpc_url: str, addresses: ContractAddresses, admin: LocalAccount, **kwargs: Any
    ) -> Chain:
        """A Chain over an HTTP JSON-RPC endpoint."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        return cls(w3, addresses, admin, **kwargs)

    def _send(self, sender: LocalAccount, fn: Any, what: str) -> TxReceipt:
        return transact(self.w3, sender, fn, what=what, timeout=self.receipt_timeout)

    def _events(self, contract: Any, event: str, receipt: TxReceipt) -> list[Any]:
        """Decoded ``event`` logs emitted by ``contract`` itself in ``receipt``."""
        decoded = contract.events[event]().process_receipt(receipt, errors=DISCARD)
        return [e for e in decoded if e["address"] == contract.address]

    # -- nodes --------------------------------------------------------------------------------

    def register_node(self, owner: str, signer: str, http_address: str) -> int:
        """addNode; returns the node id the registry assigned (100, 200, ...)."""
        registry = self.contracts.node_registry
        receipt = self._send(
            self.admin,
            registry.functions.addNode(_addr(owner), _addr(signer), http_address),
            f"NodeRegistry.addNode(signer={signer})",
        )
        (added,) = self._events(registry, "NodeAdded", receipt)
        return int(added["args"]["nodeId"])

    def add_to_network(self, node_id: int) -> None:
        fn = self.contracts.node_registry.functions.addToNetwork(node_id)
        self._send(self.admin, fn, f"NodeRegistry.addToNetwork({node_id})")

    def remove_from_network(self, node_id: int) -> None:
        fn = self.contracts.node_registry.functions.removeFromNetwork(node_id)
        self._send(self.admin, fn, f"NodeRegistry.removeFromNetwork({node_id})")

    def set_http_address(
        self, node_id: int, http_address: str, *, sender: LocalAccount | None = None
    ) -> None:
        """As the admin, or as ``sender`` (the node's owner)."""
        fn = self.contracts.node_registry.functions.setHttpAddress(node_id, http_address)
        self._send(sender or self.admin, fn, f"NodeRegistry.setHttpAddress({node_id})")

    def get_node(self, node_id: int) -> NodeRecord:
        fn = self.contracts.node_registry.functions.getNode(node_id)
        return _node(call(fn, what=f"NodeRegistry.getNode({node_id})"))

    def all_nodes(self) -> list[NodeRecord]:
        return [_node(n) for n in call(self.contracts.node_registry.functions.getAllNodes())]

    def canonical_node_ids(self) -> list[int]:
        nodes = call(self.contracts.node_registry.functions.getCanonicalNodes())
        return [int(n[0]) for n in nodes]

    # -- rates --------------------------------------------------------------------------------

    def add_rates(self, rates: Rates) -> None:
        fn = self.contracts.rate_registry.functions.addRates(*rates.as_args())
        self._send(self.admin, fn, f"RateRegistry.addRates(startTime={rates.start_time})")

    def rates(self) -> list[Rates]:
        registry = self.contracts.rate_registry.functions
        count = call(registry.getRatesCount())
        return [Rates(*map(int, r)) for r in call(registry.getRates(0, count))]

    # -- token and gas ------------------------------------------------------------------------

    def mint(self, to: str, amount: int) -> None:
        """FeeToken.mint (open to anyone; the admin pays the gas)."""
        fn = self.contracts.fee_token.functions.mint(_addr(to), amount)
        self._send(self.admin, fn, f"FeeToken.mint({to}, {amount})")

    def fee_token_balance(self, address: str) -> int:
        return int(call(self.contracts.fee_token.functions.balanceOf(_addr(address))))

    def fee_token_supply(self) -> int:
        return int(call(self.contracts.fee_token.functions.totalSupply()))

    def gas_balance(self, address: str) -> int:
        """Native balance in wei: whether ``address`` can still pay for transactions."""
        return int(self.w3.eth.get_balance(_addr(address)))

    # -- payers -------------------------------------------------------------------------------

    def deposit(self, funder: LocalAccount, amount: int, *, payer: str | None = None) -> None:
        """Approve and deposit ``amount`` of the funder's tokens for ``payer`` (default: funder)."""
        credited = _addr(payer or funder.address)
        token = self.contracts.fee_token.functions
        registry = self.contracts.payer_registry
        self._send(funder, token.approve(registry.address, amount), "FeeToken.approve")
        self._send(
            funder,
            registry.functions.deposit(credited, amount),
            f"PayerRegistry.deposit({credited}, {amount})",
        )

    def fund_payer(self, payer: LocalAccount | str, amount: int) -> None:
        """Mint, approve and deposit ``amount`` into the PayerRegistry for ``payer``.

        With the payer's key the payer mints to itself and deposits; with only an address the
        admin mints to itself and deposits on the payer's behalf (the balance is the payer's).
        """
        if isinstance(payer, str):
            self.mint(self.admin.address, amount)
            self.deposit(self.admin, amount, payer=payer)
            return
        self.mint(payer.address, amount)
        self.deposit(payer, amount)

    def balances(self, address: str) -> Balances:
        """PayerRegistry balance, pending withdrawal, FeeToken and gas of one address."""
        pending, unlock = self.pending_withdrawal(address)
        return Balances(
            address=_addr(address),
            payer_registry=self.payer_balance(address),
            pending_withdrawal=pending,
            withdrawable_at=unlock,
            fee_token=self.fee_token_balance(address),
            gas_wei=self.gas_balance(address),
        )

    def payer_balance(self, payer: str) -> int:
        """Signed: negative when settlement charged more than the payer held."""
        return int(call(self.contracts.payer_registry.functions.getBalance(_addr(payer))))

    def pending_withdrawal(self, payer: str) -> tuple[int, int]:
        """(amount, withdrawable unix time); (0, 0) when none is pending."""
        fn = self.contracts.payer_registry.functions.getPendingWithdrawal(_addr(payer))
        amount, when = call(fn)
        return int(amount), int(when)

    def request_withdrawal(self, payer: LocalAccount, amount: int) -> int:
        """Returns the unix time from which the withdrawal may be finalized."""
        registry = self.contracts.payer_registry
        receipt = self._send(
            payer,
            registry.functions.requestWithdrawal(amount),
            f"PayerRegistry.requestWithdrawal({amount}) by {payer.address}",
        )
        (event,) = self._events(registry, "WithdrawalRequested", receipt)
        return int(event["args"]["withdrawableTimestamp"])

    def cancel_withdrawal(self, payer: LocalAccount) -> None:
        fn = self.contracts.payer_registry.functions.cancelWithdrawal()
        self._send(payer, fn, f"PayerRegistry.cancelWithdrawal by {payer.address}")

    def withdraw_lock_period(self) -> int:
        return int(call(self.contracts.payer_registry.functions.withdrawLockPeriod()))

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock the withdrawal lock is measured on."""
        block = guarded("eth_getBlockByNumber(latest)", lambda: self.w3.eth.get_block("latest"))
        return int(block["timestamp"])

    def advance_time(self, seconds: int) -> int:
        """Local anvil only: move chain time forward and mine a block; returns the new time."""
        for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
            reply = self._rpc(method, params)
            if reply.get("error"):
                raise ChainError(f"{method}: {reply['error'].get('message', reply['error'])}; "
                                 "time travel needs a local anvil")
        return self.chain_time()

    def _rpc(self, method: str, params: list[Any]) -> Any:
        def request() -> Any:
            return self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        return guarded(method, request)

    def finalize_withdrawal(self, payer: LocalAccount, recipient: str | None = None) -> int:
        """Transfers the pending amount to ``recipient`` (default: the payer); returns it."""
        registry = self.contracts.payer_registry
        receipt = self._send(
            payer,
            registry.functions.finalizeWithdrawal(_addr(recipient or payer.address)),
            f"PayerRegistry.finalizeWithdrawal by {payer.address}",
        )
        (event,) = self._events(registry, "WithdrawalFinalized", receipt)
        return int(event["args"]["amount"])

    def excess(self) -> int:
        return int(call(self.contracts.payer_registry.functions.excess()))

    def send_excess_to_fee_distributor(self) -> int:
        """Moves the PayerRegistry's excess to the DistributionManager; returns the amount."""
        registry = self.contracts.payer_registry
        receipt = self._send(
            self.admin,
            registry.functions.sendExcessToFeeDistributor(),
            "PayerRegistry.sendExcessToFeeDistributor",
        )
        events = self._events(registry, "ExcessTransferred", receipt)
        return sum(int(e["args"]["amount"]) for e in events)

    def payer_registry_totals(self) -> dict[str, int]:
        """totalDeposited, totalWithdrawn, totalSettled: what balance conservation checks."""
        fns = self.contracts.payer_registry.functions
        return {
            "deposited": int(call(fns.totalDeposited())),
            "withdrawn": int(call(fns.totalWithdrawn())),
            "settled": int(call(fns.totalSettled())),
            "excess_transferred": int(call(fns.totalExcessTransferred())),
        }

    # -- payer reports ------------------------------------------------------------------------

    def report_domain(self) -> ReportDomain:
        """What report digests are bound to: this chain's id and the PayerReportManager."""
        chain_id = guarded("eth_chainId", lambda: self.w3.eth.chain_id)
        return ReportDomain(int(chain_id), self.addresses.payer_report_manager)

    def payer_report_digest(self, spec: PayerReportSpec) -> bytes:
        """The digest as the contract computes it (to cross-check ``spec.digest(domain)``)."""
        fn = self.contracts.payer_report_manager.functions.getPayerReportDigest(*spec.args())
        return bytes(call(fn))

    def submit_payer_report(
        self,
        spec: PayerReportSpec,
        signatures: Sequence[tuple[int, bytes]],
        *,
        sender: LocalAccount | None = None,
    ) -> int:
        """Submit with (node id, signature) pairs; returns the report's index."""
        manager = self.contracts.payer_report_manager
        fn = manager.functions.submit(*spec.args(), [(n, bytes(s)) for n, s in signatures])
        receipt = self._send(
            sender or self.admin,
            fn,
            f"PayerReportManager.submit(originator={spec.originator_node_id}, "
            f"{spec.start_sequence_id}..{spec.end_sequence_id})",
        )
        (event,) = self._events(manager, "PayerReportSubmitted", receipt)
        return int(event["args"]["payerReportIndex"])

    def settle_payer_report(
        self,
        originator_node_id: int,
        index: int,
        payers: Sequence[str],
        fees: Sequence[int],
        *,
        sender: LocalAccount | None = None,
    ) -> int:
        """Settle a submitted report; returns the fees settled."""
        manager = self.contracts.payer_report_manager
        fn = manager.functions.settle(
            originator_node_id, index, [_addr(p) for p in payers], list(fees)
        )
        receipt = self._send(
            sender or self.admin,
            fn,
            f"PayerReportManager.settle(originator={originator_node_id}, index={index})",
        )
        (event,) = self._events(manager, "PayerReportSettled", receipt)
        return int(event["args"]["feesSettled"])

    def get_payer_report(self, originator_node_id: int, index: int) -> PayerReportRecord:
        fn = self.contracts.payer_report_manager.functions.getPayerReport(originator_node_id, index)
        r = call(fn, what=f"PayerReportManager.getPayerReport({originator_node_id}, {index})")
        return PayerReportRecord(
            originator_node_id=int(r[0]),
            start_sequence_id=int(r[1]),
            end_sequence_id=int(r[2]),
            end_minute_since_epoch=int(r[3]),
            payers_hash=bytes(r[4]),
            node_ids=tuple(int(n) for n in r[5]),
            is_settled=bool(r[6]),
            fees_settled=int(r[7]),
        )

    def payer_report_count(self, originator_node_id: int) -> int:
        fn = self.contracts.payer_report_manager.functions.getPayerReportCount(originator_node_id)
        return int(call(fn))

    def payer_reports(self, originator_node_id: int) -> list[PayerReportRecord]:
        """Every report of one originator, in index order."""
        count = self.payer_report_count(originator_node_id)
        return [self.get_payer_report(originator_node_id, i) for i in range(count)]

    def all_payer_reports(self) -> dict[tuple[int, int], PayerReportRecord]:
        """(originator, index) -> report, over every registered node."""
        return {(n.node_id, i): r for n in self.all_nodes()
                for i, r in enumerate(self.payer_reports(n.node_id))}

    # -- node fees ----------------------------------------------------------------------------

    def claim(self, owner: LocalAccount, node_id: int, reports: Iterable[tuple[int, int]]) -> int:
        """Claim the node's share of settled (originator, index) reports; returns the sum."""
        pairs = list(reports)
        manager = self.contracts.distribution_manager
        fn = manager.functions.claim(node_id, [o for o, _ in pairs], [i for _, i in pairs])
        receipt = self._send(owner, fn, f"DistributionManager.claim(node {node_id}, {pairs})")
        return sum(int(e["args"]["amount"]) for e in self._events(manager, "Claimed", receipt))

    def has_claimed(self, node_id: int, originator_node_id: int, index: int) -> bool:
        fn = self.contracts.distribution_manager.functions.hasClaimed(
            node_id, originator_node_id, index)
        return bool(call(fn))

    def claimable_reports(self, node_id: int) -> list[tuple[int, int]]:
        """(originator, index) of settled reports that name ``node_id`` and it has not claimed."""
        return sorted(key for key, r in self.all_payer_reports().items()
                      if r.is_settled and node_id in r.node_ids
                      and not self.has_claimed(node_id, *key))

    def withdraw(self, owner: LocalAccount, node_id: int) -> int:
        """Transfer the node's owed fees to its owner; returns the amount (0 if none owed)."""
        manager = self.contracts.distribution_manager
        receipt = self._send(
            owner, manager.functions.withdraw(node_id), f"DistributionManager.withdraw({node_id})"
        )
        return sum(int(e["args"]["amount"]) for e in self._events(manager, "Withdrawn", receipt))

    def owed_fees(self, node_id: int) -> int:
        return int(call(self.contracts.distribution_manager.functions.getOwedFees(node_id)))

    def total_owed_fees(self) -> int:
        return int(call(self.contracts.distribution_manager.functions.totalOwedFees()))

    def protocol_fees(self) -> int:
        return int(call(self.contracts.distribution_manager.functions.protocolFees()))

    def distributed_fees(self) -> int:
        """What nodes have withdrawn from the DistributionManager so far."""
        return int(call(self.contracts.distribution_manager.functions.totalWithdrawn()))


def _addr(address: str) -> ChecksumAddress:
    try:
        return Web3.to_checksum_address(address)
    except ValueError as e:
        raise ConfigError(f"not an address: {address!r}") from e


def _node(raw: Sequence[Any]) -> NodeRecord:
    node_id, owner, signer, is_canonical, http_address = raw
    return NodeRecord(int(node_id), owner, signer, bool(is_canonical), http_address)
