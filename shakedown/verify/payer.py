"""Payer-report and money checks (marker ``payer``): what the report pipeline left in each
database agrees with itself and with the chain, and the chain's books balance.

Per node (its ``payer_reports`` and ``payer_report_attestations``):

- ``check_stuck``: none of the node's own reports still pending past a threshold;
- ``check_quorum``: each of its own submitted or settled reports holds signatures over its id
  from n/2+1 canonical nodes, each recovering to that node's registered signer;
- ``check_settled``: every settled report on the PayerReportManager is in the database with
  the same fields, and every row the database calls submitted or settled is on the chain so.

On the chain alone (state and events from block 0):

- ``check_balances``: each payer's PayerRegistry balance, plus its pending and finalized
  withdrawals, is its deposits minus its settled fees; every settled fee was charged by the
  settlement of a settled report, summing to that report's fees; the registry's totals agree;
- ``check_token_supply``: the FeeToken's supply is what was minted, and every holder's balance
  is what its transfers leave it;
- ``check_distribution``: what the DistributionManager owes nodes, has paid them and keeps as
  protocol fees, plus the shares not claimed yet, is what settlement accrued, report by report
  as its Claimed and Withdrawn events say; and what it still owes is backed by tokens (its
  own, the PayerRegistry's excess, or payer debt the registry will collect).

    problems = check_quorum(conn, "node-200", 200, signers, {100, 200, 300})
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from eth_utils import to_checksum_address

from refnode.envelopes import InvalidEnvelope, recover
from refnode.report_spec import ReportSpec
from shakedown.chain.ops import Chain
from shakedown.chain.records import PayerReportRecord
from shakedown.chain.tx import call
from shakedown.errors import ChainError
from shakedown.verify.signatures import named

PENDING, SUBMITTED, SETTLED, REJECTED = 0, 1, 2, 3
ATTESTATION_REJECTED = 2
STUCK_AFTER_S = 300.0  # five default report intervals


@dataclass(frozen=True)
class ReportRow:
    """One ``payer_reports`` row, with its age in seconds (the database's clock)."""

    id: bytes
    originator: int
    start: int
    end: int
    minute: int
    payers_hash: bytes
    node_ids: tuple[int, ...]
    submission: int
    attestation: int
    index: int | None
    age_s: float

    def __str__(self) -> str:
        where = f", index {self.index}" if self.index is not None else ""
        return (f"originator {self.originator} report ({self.start}, {self.end}]{where} "
                f"id {self.id.hex()[:16]}")

    def spec(self) -> ReportSpec:
        return ReportSpec(self.originator, self.start, self.end, self.minute, self.payers_hash,
                          self.node_ids)


def read_reports(conn: psycopg.Connection) -> list[ReportRow]:
    """Every report row; ``created_at`` may be a timestamp (refnode) or a nullable
    timestamptz (xmtpd): a row without one counts as just made."""
    rows = conn.execute(
        "SELECT id, originator_node_id, start_sequence_id, end_sequence_id, "
        "end_minute_since_epoch, payers_merkle_root, active_node_ids, submission_status, "
        "attestation_status, submitted_report_index, "
        "coalesce(EXTRACT(EPOCH FROM now() - created_at), 0)::float8 "
        "FROM payer_reports ORDER BY originator_node_id, start_sequence_id, created_at"
    ).fetchall()
    return [ReportRow(bytes(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), bytes(r[5]),
                      tuple(int(n) for n in r[6]), int(r[7]), int(r[8]),
                      None if r[9] is None else int(r[9]), float(r[10])) for r in rows]


def read_attestations(conn: psycopg.Connection) -> dict[bytes, dict[int, bytes]]:
    found: dict[bytes, dict[int, bytes]] = defaultdict(dict)
    for report_id, node_id, signature in conn.execute(
            "SELECT payer_report_id, node_id, signature FROM payer_report_attestations"):
        found[bytes(report_id)][int(node_id)] = bytes(signature)
    return found


# -- per node -------------------------------------------------------------------------------

def stuck_problems(rows: list[ReportRow], node_id: int, stuck_after_s: float) -> list[str]:
    """The node's own reports pending longer than ``stuck_after_s`` (pure)."""
    return [f"{row} pending submission for {row.age_s:.0f} s (threshold {stuck_after_s:g} s)"
            for row in rows
            if row.originator == node_id and row.submission == PENDING
            and row.attestation != ATTESTATION_REJECTED and row.age_s > stuck_after_s]


def check_stuck(conn: psycopg.Connection, node: str, node_id: int,
                stuck_after_s: float) -> list[str]:
    return named(node, stuck_problems(read_reports(conn), node_id, stuck_after_s))


def quorum_problems(rows: list[ReportRow], attestations: dict[bytes, dict[int, bytes]],
                    node_id: int, signers: dict[int, str], canonical: set[int]) -> list[str]:
    """The node's own submitted or settled reports lacking n/2+1 valid canonical signatures
    (pure but for the signature recovery)."""
    required = len(canonical) // 2 + 1
    problems = []
    for row in rows:
        if row.originator != node_id or row.submission not in (SUBMITTED, SETTLED):
            continue
        valid, bad = [], []
        for signer_id, signature in sorted(attestations.get(row.id, {}).items()):
            registered = signers.get(signer_id)
            try:
                address = recover(row.id, signature)
            except InvalidEnvelope as e:
                bad.append(f"node {signer_id}'s signature does not recover ({e})")
                continue
            if registered is None or address.lower() != registered.lower():
                bad.append(f"node {signer_id}'s signature recovers to {address}; its registered "
                           f"signer is {registered}")
            elif signer_id in canonical:
                valid.append(signer_id)
        if len(valid) < required:
            state = "settled" if row.submission == SETTLED else "submitted"
            why = f"; {'; '.join(bad)}" if bad else ""
            problems.append(f"{row} is {state} with valid signatures of nodes {valid} only; a "
                            f"quorum is {required} of the canonical {sorted(canonical)}{why}")
    return problems


def check_quorum(conn: psycopg.Connection, node: str, node_id: int, signers: dict[int, str],
                 canonical: set[int]) -> list[str]:
    with conn.transaction():
        rows, attestations = read_reports(conn), read_attestations(conn)
    return named(node, quorum_problems(rows, attestations, node_id, signers, canonical))


def _differences(row: ReportRow, chain: PayerReportRecord) -> list[str]:
    fields = [("originator", row.originator, chain.originator_node_id),
              ("range", (row.start, row.end), (chain.start_sequence_id, chain.end_sequence_id)),
              ("end minute", row.minute, chain.end_minute_since_epoch),
              ("payers hash", row.payers_hash.hex(), chain.payers_hash.hex()),
              ("node ids", list(row.node_ids), list(chain.node_ids))]
    return [f"{name} {mine} but on the chain {theirs}" for name, mine, theirs in fields
            if mine != theirs]


def settled_problems(rows: list[ReportRow],
                     on_chain: dict[tuple[int, int], PayerReportRecord]) -> list[str]:
    """Where the database's submitted and settled reports disagree with the chain (pure)."""
    problems = []
    held: dict[tuple[int, int], ReportRow] = {}
    for row in rows:
        if row.submission not in (SUBMITTED, SETTLED):
            continue
        if row.index is None:
            problems.append(f"{row} is marked submitted without a report index")
            continue
        key = (row.originator, row.index)
        held[key] = row
        found = on_chain.get(key)
        if found is None:
            state = "settled" if row.submission == SETTLED else "submitted"
            problems.append(f"{row} is marked {state} but the PayerReportManager has no such "
                            "report")
            continue
        diff = _differences(row, found)
        if diff:
            problems.append(f"{row} differs from the PayerReportManager's: {'; '.join(diff)}")
        if row.submission == SETTLED and not found.is_settled:
            problems.append(f"{row} is marked settled but is not settled on the chain")
    for (originator, index), found in sorted(on_chain.items()):
        if not found.is_settled:
            continue
        mine = held.get((originator, index))
        if mine is None:
            problems.append(f"originator {originator} report ({found.start_sequence_id}, "
                            f"{found.end_sequence_id}], index {index} is settled on the chain "
                            "but missing from this database")
        elif mine.submission != SETTLED:
            problems.append(f"{mine} is settled on the chain but marked submitted here")
    return problems


def check_settled(conn: psycopg.Connection, node: str, chain: Chain, wait_s: float,
                  sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """``settled_problems`` against the chain, read again until they persist ``wait_s`` (a
    node mirrors the chain on its report interval)."""
    deadline = time.monotonic() + wait_s
    while True:
        on_chain = chain.all_payer_reports()
        problems = settled_problems(read_reports(conn), on_chain)
        if not problems or time.monotonic() >= deadline:
            return named(node, problems)
        sleep(1.0)


# -- the chain ------------------------------------------------------------------------------

def _logs(contract: Any, event: str) -> list[Any]:
    """Every ``event`` up to the block the check is pinned to (``_pinned``)."""
    return list(getattr(contract.events, event)().get_logs(
        from_block=0, to_block=contract.w3.eth.default_block))


def _pinned(check: Callable[[Chain], list[str]]) -> Callable[[Chain], list[str]]:
    """Run ``check`` with every call and log read at one block: nodes keep settling while
    verify reads, and events read at one block against totals read at the next disagree."""
    @functools.wraps(check)
    def at_one_block(chain: Chain) -> list[str]:
        eth = chain.w3.eth
        before = eth.default_block
        eth.default_block = eth.block_number
        try:
            return check(chain)
        finally:
            eth.default_block = before
    return at_one_block


def _show(address: str) -> str:
    return to_checksum_address(address)


@_pinned
def check_balances(chain: Chain) -> list[str]:
    """Payer balances and the PayerRegistry's totals from its events and the settled reports."""
    registry = chain.contracts.payer_registry
    manager = chain.contracts.payer_report_manager
    deposited: dict[str, int] = defaultdict(int)
    settled: dict[str, int] = defaultdict(int)
    withdrawn: dict[str, int] = defaultdict(int)
    for e in _logs(registry, "Deposit"):
        deposited[e["args"]["payer"]] += int(e["args"]["amount"])
    for e in _logs(registry, "WithdrawalFinalized"):
        withdrawn[e["args"]["payer"]] += int(e["args"]["amount"])
    charged_in: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    for e in _logs(registry, "UsageSettled"):
        settled[e["args"]["payer"]] += int(e["args"]["fee"])
        charged_in[bytes(e["transactionHash"])].append((e["args"]["payer"], int(e["args"]["fee"])))
    reports = chain.all_payer_reports()
    problems: list[str] = []
    settlements: dict[bytes, tuple[int, int, int]] = {}
    for e in _logs(manager, "PayerReportSettled"):
        o, i = int(e["args"]["originatorNodeId"]), int(e["args"]["payerReportIndex"])
        settlements[bytes(e["transactionHash"])] = (o, i, int(e["args"]["feesSettled"]))
    for tx, charges in sorted(charged_in.items()):
        total = sum(fee for _, fee in charges)
        if tx not in settlements:
            for payer_address, fee in charges:
                problems.append(f"payer {_show(payer_address)} charged {fee} picodollars in "
                                f"transaction 0x{tx.hex()} outside any payer report's "
                                "settlement")
            continue
        o, i, fees = settlements[tx]
        report = reports.get((o, i))
        if total != fees or report is None or report.fees_settled != fees:
            problems.append(f"originator {o} report index {i}: payers charged {total} "
                            f"picodollars at settlement; the report settled {fees} (on the "
                            f"chain now {None if report is None else report.fees_settled})")
    for payer_address in sorted(deposited.keys() | settled.keys() | withdrawn.keys()):
        balance = chain.payer_balance(payer_address)
        pending, _ = chain.pending_withdrawal(payer_address)
        expected = deposited[payer_address] - settled[payer_address]
        if balance + pending + withdrawn[payer_address] != expected:
            problems.append(f"payer {_show(payer_address)}: balance {balance} + pending "
                            f"withdrawal {pending} + withdrawn {withdrawn[payer_address]} "
                            f"picodollars; deposits {deposited[payer_address]} minus settled "
                            f"fees {settled[payer_address]} make {expected}")
    totals = chain.payer_registry_totals()
    report_fees = sum(r.fees_settled for r in reports.values() if r.is_settled)
    for name, events, total in (("deposited", deposited, totals["deposited"]),
                                ("withdrawn", withdrawn, totals["withdrawn"]),
                                ("settled", settled, totals["settled"])):
        if sum(events.values()) != total:
            problems.append(f"PayerRegistry total {name} is {total}; its events sum to "
                            f"{sum(events.values())}")
    if report_fees != totals["settled"]:
        problems.append(f"PayerRegistry total settled is {totals['settled']}; the settled "
                        f"payer reports' fees sum to {report_fees}")
    return problems


@_pinned
def check_token_supply(chain: Chain) -> list[str]:
    """The FeeToken supply equals its mints, and each holder's balance its transfers."""
    token = chain.contracts.fee_token
    net: dict[str, int] = defaultdict(int)
    minted = 0
    for e in _logs(token, "Transfer"):
        source, to, value = e["args"]["from"], e["args"]["to"], int(e["args"]["value"])
        if int(source, 16) == 0:
            minted += value
        else:
            net[source] -= value
        net[to] += value
    problems = []
    supply = chain.fee_token_supply()
    if supply != minted:
        problems.append(f"FeeToken total supply is {supply}; its mints sum to {minted}")
    held = 0
    for holder in sorted(net):
        balance = chain.fee_token_balance(holder)
        held += balance
        if balance != net[holder]:
            problems.append(f"FeeToken holder {_show(holder)} holds {balance}; its transfers "
                            f"leave it {net[holder]}")
    if held != supply:
        problems.append(f"FeeToken holders hold {held} in all; the total supply is {supply}")
    return problems



def settlement_charges(chain: Chain) -> dict[tuple[int, int], dict[str, int]]:
    """(originator, index) -> {payer address in lowercase: fee charged} of every settlement,
    from the PayerRegistry's UsageSettled events in the settling transaction."""
    charged: dict[bytes, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in _logs(chain.contracts.payer_registry, "UsageSettled"):
        charged[bytes(e["transactionHash"])][e["args"]["payer"].lower()] += int(e["args"]["fee"])
    return {(int(e["args"]["originatorNodeId"]), int(e["args"]["payerReportIndex"])):
            dict(charged.get(bytes(e["transactionHash"]), {}))
            for e in _logs(chain.contracts.payer_report_manager, "PayerReportSettled")}


def _claims(chain: Chain, settled: dict[tuple[int, int], PayerReportRecord]
            ) -> tuple[dict[tuple[int, int], dict[int, int]], list[str]]:
    """Claimed events per report and node, and the claims no settled report allows."""
    claimed: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    problems = []
    for e in _logs(chain.contracts.distribution_manager, "Claimed"):
        node, amount = int(e["args"]["nodeId"]), int(e["args"]["amount"])
        key = (int(e["args"]["originatorNodeId"]), int(e["args"]["payerReportIndex"]))
        report = settled.get(key)
        where = f"originator {key[0]} report index {key[1]}"
        if report is None:
            problems.append(f"node {node} claimed {amount} of {where}, which is not settled")
        elif node not in report.node_ids or node in claimed[key]:
            problems.append(f"node {node} claimed {amount} of {where} again or without being in "
                            f"its nodes {list(report.node_ids)}")
        elif amount != report.fees_settled // len(report.node_ids):
            problems.append(f"node {node} claimed {amount} of {where}; its share of "
                            f"{report.fees_settled} among {len(report.node_ids)} nodes is "
                            f"{report.fees_settled // len(report.node_ids)}")
        claimed[key][node] = amount
    return claimed, problems


@_pinned
def check_distribution(chain: Chain) -> list[str]:
    """Owed + withdrawn + protocol fees + unclaimed shares = fees settled; per node owed =
    claimed - withdrawn; what is still owed is backed by tokens. A DistributionManager that
    cannot answer (other code at its address) is one problem naming it."""
    try:
        return _distribution_problems(chain)
    except ChainError as e:
        return [f"DistributionManager at {chain.addresses.distribution_manager}: {e}"]


def _distribution_problems(chain: Chain) -> list[str]:
    manager = chain.contracts.distribution_manager
    settled = {k: r for k, r in chain.all_payer_reports().items() if r.is_settled}
    claimed, problems = _claims(chain, settled)
    withdrawn: dict[int, int] = defaultdict(int)
    for e in _logs(manager, "Withdrawn"):
        withdrawn[int(e["args"]["nodeId"])] += int(e["args"]["amount"])
    for node in sorted(n.node_id for n in chain.all_nodes()):
        owed = chain.owed_fees(node)
        got = sum(c.get(node, 0) for c in claimed.values())
        if owed != got - withdrawn[node]:
            problems.append(f"node {node} is owed {owed} picodollars; it claimed {got} and "
                            f"withdrew {withdrawn[node]}, which leaves {got - withdrawn[node]}")
    unclaimed = protocol_due = 0
    for key, r in settled.items():
        n, mine = len(r.node_ids), claimed.get(key, {})
        unclaimed += (n - len(mine)) * (r.fees_settled // n)
        if mine:  # the remainder becomes protocol fees at the first claim
            protocol_due += r.fees_settled % n
        else:
            unclaimed += r.fees_settled % n
    owed, protocol = chain.total_owed_fees(), chain.protocol_fees()
    paid, accrued = chain.distributed_fees(), sum(r.fees_settled for r in settled.values())
    if protocol != protocol_due:
        problems.append(f"DistributionManager protocol fees are {protocol}; the remainders of "
                        f"the claimed reports sum to {protocol_due}")
    if paid != sum(withdrawn.values()):
        problems.append(f"DistributionManager total withdrawn is {paid}; its Withdrawn events "
                        f"sum to {sum(withdrawn.values())}")
    if owed + paid + protocol + unclaimed != accrued:
        problems.append(f"DistributionManager owes nodes {owed}, paid them {paid}, keeps "
                        f"{protocol} protocol fees and {unclaimed} is unclaimed: "
                        f"{owed + paid + protocol + unclaimed} picodollars, but settlement "
                        f"accrued {accrued}")
    held = chain.fee_token_balance(chain.addresses.distribution_manager)
    debt = int(call(chain.contracts.payer_registry.functions.totalDebt()))
    backing, due = held + chain.excess() + debt, owed + protocol + unclaimed
    if backing < due:
        problems.append(f"DistributionManager still owes {due} picodollars (nodes {owed}, "
                        f"protocol {protocol}, unclaimed {unclaimed}) but holds {held}; with "
                        f"the PayerRegistry's excess {chain.excess()} and payer debt {debt} "
                        f"that is {backing}")
    return problems
