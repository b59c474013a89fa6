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
from shakedown.chain.records import ContractAddresses, NodeRecord, PayerReportRecord, Rates
from shakedown.chain.reports import PayerReportSpec
from shakedown.chain.tx import call, transact
from shakedown.errors import ConfigError


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

    def fund_payer(self, payer: LocalAccount, amount: int) -> None:
        """Mint ``amount`` to the payer and deposit it into the PayerRegistry for itself."""
        self.mint(payer.address, amount)
        self.deposit(payer, amount)

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
        }

    # -- payer reports ------------------------------------------------------------------------

    def payer_report_digest(self, spec: PayerReportSpec) -> bytes:
        """The digest as the contract computes it (to cross-check ``spec.digest()``)."""
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

    # -- node fees ----------------------------------------------------------------------------

    def claim(self, owner: LocalAccount, node_id: int, reports: Iterable[tuple[int, int]]) -> int:
        """Claim the node's share of settled (originator, index) reports; returns the sum."""
        pairs = list(reports)
        manager = self.contracts.distribution_manager
        fn = manager.functions.claim(node_id, [o for o, _ in pairs], [i for _, i in pairs])
        receipt = self._send(owner, fn, f"DistributionManager.claim(node {node_id}, {pairs})")
        return sum(int(e["args"]["amount"]) for e in self._events(manager, "Claimed", receipt))

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


def _addr(address: str) -> ChecksumAddress:
    try:
        return Web3.to_checksum_address(address)
    except ValueError as e:
        raise ConfigError(f"not an address: {address!r}") from e


def _node(raw: Sequence[Any]) -> NodeRecord:
    node_id, owner, signer, is_canonical, http_address = raw
    return NodeRecord(int(node_id), owner, signer, bool(is_canonical), http_address)
