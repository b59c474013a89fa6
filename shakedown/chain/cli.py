"""``shakedown chain ...``: payer, fee and network operations on a deployed testnet's chain.

    shakedown chain balances                       # payers, gateway, node owners, contracts
    shakedown chain fund-payer payer-0 1000000000  # mint, approve, deposit (picodollars)
    shakedown chain withdraw-request payer-0 5000
    shakedown chain withdraw-finalize payer-0 --advance-time
    shakedown chain send-excess
    shakedown chain claim node-200                 # every settled report it has not claimed
    shakedown chain withdraw node-200
    shakedown chain node-remove node-300
    shakedown chain rates set message_fee=2000 start=+10s
    shakedown chain reports

The chain and contracts come from the testnet's deployment record. Parties are named after
their local keys (``payer-N``, ``gateway-N``, ``admin``, ``node-N00`` for a node's owner) or
given as 0x addresses where no signature is needed. Amounts are FeeToken base units
(picodollars), digits with optional ``_``. Every number is checked against the contract
argument it becomes (amounts uint256, rates and times uint64, node ids uint32) before the
chain is asked, so a value out of range is one line and exit 2.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses, Rates
from shakedown.errors import ConfigError, NotFoundError
from shakedown.keys import admin_account, gateway, node_owner, payer

RATE_FIELDS = ("message_fee", "storage_fee", "congestion_fee", "target_rate", "start")
# What the contracts' argument types hold: amounts and report indices uint256, rates and
# times uint64, node ids uint32 (and node ids are multiples of 100).
UINT256, UINT64, UINT32 = 2**256 - 1, 2**64 - 1, 2**32 - 1
MAX_NODE_ID = UINT32 // 100 * 100
_PARTY = re.compile(r"^(payer|gateway)-(\d+)$")
_NODE = re.compile(r"^(?:node-)?(\d+)$")


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``chain`` command and its subcommands, each with ``-i``/``-v`` from ``common``."""
    chain = subparsers.add_parser("chain", help="payer, fee and network operations on-chain")
    sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=[common], help=help_text)
        parser.add_argument("--testnet", help="which testnet, when the inventory has several")
        return parser

    command("balances", "PayerRegistry, FeeToken and gas balances").add_argument(
        "who", nargs="*", help="payer-N, gateway-N, node-N00, admin or 0x... (default: all)")
    for name, help_text in (("fund-payer", "mint, approve and deposit for a payer"),
                            ("deposit", "deposit a payer's own FeeTokens"),
                            ("withdraw-request", "request a payer withdrawal (starts the lock)")):
        parser = command(name, help_text)
        parser.add_argument("payer", help="payer-N or gateway-N (fund-payer: also 0x...)")
        parser.add_argument("amount", help="picodollars")
    command("withdraw-cancel", "cancel a pending payer withdrawal").add_argument("payer")
    finalize = command("withdraw-finalize", "pay out a payer withdrawal after its lock")
    finalize.add_argument("payer")
    finalize.add_argument("--to", help="recipient address (default: the payer)")
    finalize.add_argument("--advance-time", action="store_true",
                          help="local anvil only: move chain time past the lock first")
    command("send-excess", "move the PayerRegistry's excess to the DistributionManager")
    claim = command("claim", "claim a node's share of settled reports")
    claim.add_argument("node", help="node-200 or 200")
    claim.add_argument("--report", action="append", default=[], metavar="ORIGINATOR:INDEX",
                       help="only these reports (default: every unclaimed settled one)")
    command("withdraw", "pay a node's owed fees to its owner").add_argument("node")
    command("node-add", "add a registered node to the canonical network").add_argument("node")
    command("node-remove", "remove a node from the canonical network").add_argument("node")
    rates = command("rates", "show the rate schedule, or append to it")
    rates.add_argument("action", nargs="?", choices=["set"], help="append new rates")
    rates.add_argument("fields", nargs="*", metavar="name=value",
                       help=f"{', '.join(RATE_FIELDS)} (unset: the current value; start: unix "
                            "seconds or +30s from now by this machine's clock, default now)")
    reports = command("reports", "payer reports on-chain")
    reports.add_argument("--originator", help="one originator (node-100 or 100)")
    chain.set_defaults(handler=run)


def run(args: argparse.Namespace, inventory: Path) -> int:
    handlers: dict[str, Callable[[argparse.Namespace, Chain], None]] = {
        "balances": _balances, "fund-payer": _fund, "deposit": _deposit,
        "withdraw-request": _request, "withdraw-cancel": _cancel,
        "withdraw-finalize": _finalize, "send-excess": _excess, "claim": _claim,
        "withdraw": _withdraw, "node-add": _node_add, "node-remove": _node_remove,
        "rates": _rates, "reports": _reports}
    handler = handlers[args.chain_command]
    _check_inputs(args)  # bad input fails before the inventory or the chain is touched
    handler(args, connect(inventory, args.testnet))
    return 0


def connect(inventory: Path, testnet: str | None = None) -> Chain:
    """A Chain over the testnet's recorded RPC endpoint and contracts, the admin signing."""
    from shakedown.deploy.record import load_record
    from shakedown.model import load_inventory

    testnets = load_inventory(inventory)
    if testnet:
        testnets = [t for t in testnets if t.name == testnet]
        if not testnets:
            raise ConfigError(f"--testnet {testnet}: not in {inventory}")
    if len(testnets) > 1:
        names = ", ".join(t.name for t in testnets)
        raise ConfigError(f"the inventory has several testnets ({names}); pick one: --testnet")
    record = load_record(testnets[0].record_path)
    if not record or "contracts" not in record:
        raise NotFoundError(f"testnet {testnets[0].name}: no deployment record at "
                            f"{testnets[0].record_path}; deploy it first (shakedown up)")
    return Chain.connect(record["chain"]["rpc"], ContractAddresses.from_dict(record["contracts"]),
                         admin_account())


# -- parsing ----------------------------------------------------------------------------------


def amount(raw: str) -> int:
    """``1_000`` -> 1000; ConfigError for anything but a positive integer a uint256 holds."""
    if not re.fullmatch(r"\d+(?:_\d+)*", raw) or int(raw) == 0:
        raise ConfigError(f"amount {raw!r}: give a positive whole number of picodollars")
    value = int(raw)
    if value > UINT256:
        raise ConfigError(f"amount {_short(raw)}: at most 2**256-1 picodollars (a uint256)")
    return value


def _short(raw: str) -> str:
    """A long number shown by its head and its length, so the error stays one short line."""
    return raw if len(raw) <= 24 else f"{raw[:12]}... ({len(raw)} digits)"


def account(name: str) -> LocalAccount:
    """The local key called ``payer-N``, ``gateway-N``, ``node-N00`` (its owner) or ``admin``."""
    if name == "admin":
        return admin_account()
    match = _PARTY.match(name)
    if match:
        return (payer if match.group(1) == "payer" else gateway)(int(match.group(2)))
    if re.fullmatch(r"node-\d+", name):
        return node_owner(node_index(name))
    raise ConfigError(f"{name!r}: name a local key: payer-N, gateway-N, node-N00 or admin")


def address(name: str) -> str:
    """An address, or the address of a named local key."""
    if name.startswith("0x"):
        if not Web3.is_address(name):
            raise ConfigError(f"{name!r} is not an address")
        return Web3.to_checksum_address(name)
    return account(name).address


def node_id(raw: str) -> int:
    match = _NODE.match(raw)
    if not match or int(match.group(1)) % 100 or int(match.group(1)) == 0:
        raise ConfigError(f"node {raw!r}: use node-200 or 200 (ids are multiples of 100)")
    if int(match.group(1)) > MAX_NODE_ID:
        raise ConfigError(f"node {_short(raw)}: ids are at most {MAX_NODE_ID} (a uint32)")
    return int(match.group(1))


def node_index(raw: str) -> int:
    """0 for node 100, 1 for node 200: the index of the node's keys."""
    return node_id(raw) // 100 - 1


def rate_fields(pairs: list[str], current: Rates, now: int) -> Rates:
    """``["message_fee=2000", "start=+10s"]`` over the current rates."""
    values = {"message_fee": current.message_fee, "storage_fee": current.storage_fee,
              "congestion_fee": current.congestion_fee,
              "target_rate": current.target_rate_per_minute, "start": now}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in values:
            raise ConfigError(f"rate {pair!r}: write name=value with name one of "
                              f"{', '.join(RATE_FIELDS)}")
        relative = key == "start" and raw.startswith("+")
        digits = raw.removeprefix("+").removesuffix("s") if key == "start" else raw
        if not re.fullmatch(r"\d+", digits):
            raise ConfigError(f"rate {_short(pair)}: the value must be a whole number")
        values[key] = now + int(digits) if relative else int(digits)
        if values[key] > UINT64:
            raise ConfigError(f"rate {key}={_short(raw)}: at most 2**64-1 (a uint64)")
    return Rates(values["message_fee"], values["storage_fee"], values["congestion_fee"],
                 values["target_rate"], values["start"])


def _check_inputs(args: argparse.Namespace) -> None:
    for attr, parse in (("amount", amount), ("node", node_id), ("originator", node_id),
                        ("to", address)):
        value = getattr(args, attr, None)
        if value:
            parse(value)
    if args.chain_command in {"deposit", "withdraw-request", "withdraw-cancel",
                              "withdraw-finalize"}:
        account(args.payer)
    elif args.chain_command == "fund-payer":
        address(args.payer)
    for who in getattr(args, "who", []):
        address(who)
    for report in getattr(args, "report", []):
        _report_key(report)
    if args.chain_command == "rates" and args.fields and args.action != "set":
        raise ConfigError("rates: to change them, write `rates set name=value ...`")
    if args.chain_command == "rates":  # syntax and ranges, before the chain is asked
        rate_fields(args.fields, Rates(0, 0, 0, 0, 0), int(time.time()))


def _report_key(raw: str) -> tuple[int, int]:
    originator, sep, index = raw.partition(":")
    if not sep or not re.fullmatch(r"\d+", index):
        raise ConfigError(f"--report {_short(raw)}: write ORIGINATOR:INDEX, e.g. 100:0")
    if int(index) > UINT256:
        raise ConfigError(f"--report {originator}:{_short(index)}: a report index is at most "
                          "2**256-1 (a uint256)")
    return node_id(originator), int(index)


# -- commands ---------------------------------------------------------------------------------


def _label(who: str) -> str:
    return who if who.startswith("0x") else f"{who} ({address(who)})"


def _balances(args: argparse.Namespace, chain: Chain) -> None:
    who = list(args.who) or _everyone(chain)
    print(f"{'who':58} {'payer registry':>16} {'pending out':>12} {'fee token':>16} "
          f"{'gas (eth)':>10}")
    contracts: dict[str, str] = {Web3.to_checksum_address(a): n
                                 for n, a in chain.addresses.to_dict().items()}
    for name in who:
        b = chain.balances(address(name))
        label = f"{contracts.get(b.address, name)} {b.address}"
        print(f"{label:58} {b.payer_registry:>16} {b.pending_withdrawal:>12} "
              f"{b.fee_token:>16} {b.gas_wei / 1e18:>10.3f}")


def _everyone(chain: Chain) -> list[str]:
    """Payers and the gateway with anything deposited, node owners, and the two contracts."""
    names = [f"payer-{n}" for n in range(20)] + [f"gateway-{n}" for n in range(10)]
    active = [n for n in names if chain.payer_balance(address(n)) or
              chain.pending_withdrawal(address(n))[0] or chain.fee_token_balance(address(n))]
    owners = [f"node-{n.node_id}" for n in chain.all_nodes()]
    return [*active, *owners, chain.addresses.payer_registry,
            chain.addresses.distribution_manager]


def _fund(args: argparse.Namespace, chain: Chain) -> None:
    value = amount(args.amount)
    target = address(args.payer) if args.payer.startswith("0x") else account(args.payer)
    chain.fund_payer(target, value)
    print(f"shakedown: funded {_label(args.payer)} with {value} picodollars; "
          f"balance {chain.payer_balance(address(args.payer))}")


def _deposit(args: argparse.Namespace, chain: Chain) -> None:
    value = amount(args.amount)
    chain.deposit(account(args.payer), value)
    print(f"shakedown: {args.payer} deposited {value}; balance "
          f"{chain.payer_balance(address(args.payer))}")


def _request(args: argparse.Namespace, chain: Chain) -> None:
    value = amount(args.amount)
    unlock = chain.request_withdrawal(account(args.payer), value)
    print(f"shakedown: {args.payer} requested a withdrawal of {value}; it unlocks at chain "
          f"time {unlock} (in {max(0, unlock - chain.chain_time())} s)")


def _cancel(args: argparse.Namespace, chain: Chain) -> None:
    chain.cancel_withdrawal(account(args.payer))
    print(f"shakedown: {args.payer}'s pending withdrawal is back in its balance "
          f"({chain.payer_balance(address(args.payer))})")


def _finalize(args: argparse.Namespace, chain: Chain) -> None:
    who = account(args.payer)
    pending, unlock = chain.pending_withdrawal(who.address)
    if pending == 0:
        raise ConfigError(f"{args.payer} has no pending withdrawal; request one first")
    wait = unlock - chain.chain_time()
    if wait > 0:
        if not args.advance_time:
            raise ConfigError(f"{args.payer}'s withdrawal unlocks in {wait} s (chain time "
                              f"{unlock}); wait, or pass --advance-time on a local anvil")
        chain.advance_time(wait)
    paid = chain.finalize_withdrawal(who, args.to)
    print(f"shakedown: paid {paid} to {args.to or args.payer}")


def _excess(args: argparse.Namespace, chain: Chain) -> None:
    moved = chain.send_excess_to_fee_distributor()
    print(f"shakedown: moved {moved} picodollars of excess to the DistributionManager")


def _claim(args: argparse.Namespace, chain: Chain) -> None:
    node = node_id(args.node)
    keys = [_report_key(r) for r in args.report] or chain.claimable_reports(node)
    if not keys:
        print(f"shakedown: node {node} has no settled report left to claim")
        return
    claimed = chain.claim(node_owner(node_index(args.node)), node, keys)
    print(f"shakedown: node {node} claimed {claimed} picodollars from {len(keys)} report(s); "
          f"owed {chain.owed_fees(node)}")


def _withdraw(args: argparse.Namespace, chain: Chain) -> None:
    node = node_id(args.node)
    paid = chain.withdraw(node_owner(node_index(args.node)), node)
    print(f"shakedown: node {node}'s owner received {paid} picodollars")


def _node_add(args: argparse.Namespace, chain: Chain) -> None:
    chain.add_to_network(node_id(args.node))
    print(f"shakedown: canonical nodes {chain.canonical_node_ids()}")


def _node_remove(args: argparse.Namespace, chain: Chain) -> None:
    chain.remove_from_network(node_id(args.node))
    print(f"shakedown: canonical nodes {chain.canonical_node_ids()}")


def _rates(args: argparse.Namespace, chain: Chain) -> None:
    if args.action == "set":
        # Nodes price by their own clocks, so "now" is this machine's, not the chain's.
        new = rate_fields(args.fields, chain.rates()[-1], int(time.time()))
        chain.add_rates(new)
    for i, r in enumerate(chain.rates()):
        print(f"{i:3}  message_fee={r.message_fee} storage_fee={r.storage_fee} "
              f"congestion_fee={r.congestion_fee} target_rate={r.target_rate_per_minute} "
              f"start={r.start_time}")


def _reports(args: argparse.Namespace, chain: Chain) -> None:
    only = node_id(args.originator) if args.originator else None
    found = chain.all_payer_reports()
    print(f"{'originator':>10} {'index':>5} {'range':>17} {'settled':>8} {'fees':>14}  nodes")
    for (originator, index), r in sorted(found.items()):
        if only is None or originator == only:
            span = f"({r.start_sequence_id}, {r.end_sequence_id}]"
            print(f"{originator:>10} {index:>5} {span:>17} {r.is_settled!s:>8} "
                  f"{r.fees_settled:>14}  {list(r.node_ids)}")
