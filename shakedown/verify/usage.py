"""Unsettled usage equals the priced envelopes: per (payer, originator, minute), the spend,
message count and last sequence a node accrued are those of the envelopes it stores, and
every envelope's fee is the RateRegistry's price at its originator time.

The payer is the one the payer signature recovers to (not the stored payer id, which the
signature check covers). Prices come from refnode.pricing, the node's own rule: an
envelope may carry the rates in force up to ``grace_s`` before its time, since a node reads
the RateRegistry on an interval.

    problems = check_usage(scan, "node-200")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from refnode.chain import Rates
from refnode.pricing import Pricing
from shakedown.observe import IndexRow, MinuteUsage
from shakedown.verify.opened import Opened
from shakedown.verify.signatures import named

if TYPE_CHECKING:
    from shakedown.verify.envelopes import EnvelopeScan

HONEST = Pricing()  # the registry's price, as an honest originator charges it
Key = tuple[str, int, int]  # (payer address in lowercase, originator, minute since epoch)


def fee_problem(env: Opened, schedule: list[Rates], grace_s: float) -> str | None:
    """Why ``env``'s fees are not the RateRegistry's price, or None when they are."""
    prices = HONEST.acceptable(schedule, env.originator_ns / 1e9, env.size, env.retention_days,
                               grace_s)
    if (env.base_fee, env.congestion_fee) in prices:
        return None
    base, congestion = sorted(prices)[-1]
    return (f"envelope {env.originator_node_id}:{env.sequence_id} charges base "
            f"{env.base_fee} + congestion {env.congestion_fee} picodollars; the RateRegistry "
            f"prices it {base} + {congestion} ({env.size}-byte client envelope, "
            f"{env.retention_days} days)")


def priced_usage(rows: list[tuple[IndexRow, Opened | None]], schedule: list[Rates],
                 grace_s: float) -> tuple[dict[Key, list[int]], list[str]]:
    """(payer, originator, minute) -> [spend, count, last sequence] of these rows, and the
    envelopes whose fee is not the registry's price (pure)."""
    usage: dict[Key, list[int]] = {}
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()
    for row, env in rows:
        key = (row.originator_node_id, row.sequence_id)
        if env is None or env.error.startswith("bytes") or key in seen:
            continue  # unreadable or duplicate rows: the other checks name them
        seen.add(key)
        payer = (env.payer or row.payer or "").lower()
        u = usage.setdefault((payer, row.originator_node_id, env.minute), [0, 0, 0])
        u[0] += env.fee
        u[1] += 1
        u[2] = max(u[2], row.sequence_id)
        wrong = fee_problem(env, schedule, grace_s)
        if wrong:
            problems.append(wrong)
    return usage, problems


def _shown(address: str) -> str:
    try:
        return to_checksum_address(address)
    except ValueError:
        return address or "<none>"


def check_usage(scan: EnvelopeScan, node: str) -> list[str]:
    """Compare ``node``'s unsettled_usage rows with what its envelopes price to (both read in
    one snapshot by the scan)."""
    if node in scan.errors:
        return [scan.errors[node]]
    expected: dict[Key, list[int]] = {}
    problems: list[str] = []
    for verdict in scan.verdicts_of(node):
        problems += verdict.pricing_problems
        for payer, originator, minute, spend, count, last in verdict.usage:
            u = expected.setdefault((payer, originator, minute), [0, 0, 0])
            u[0] += spend
            u[1] += count
            u[2] = max(u[2], last)
    have = {(p.lower(), o, m): v for (p, o, m), v in scan.nodes[node].usage.items()}
    for key in sorted(expected.keys() | have.keys()):
        want = expected.get(key, [0, 0, 0])
        got = have.get(key, MinuteUsage(0, 0, 0))
        if (got.spend_picodollars, got.message_count, got.last_sequence_id) != tuple(want):
            payer, originator, minute = key
            problems.append(f"payer {_shown(payer)}, originator {originator}, minute {minute}: "
                            f"unsettled {got.spend_picodollars} picodollars over "
                            f"{got.message_count} envelopes (last sequence "
                            f"{got.last_sequence_id}); the stored envelopes price to {want[0]} "
                            f"over {want[1]} (last sequence {want[2]})")
    return named(node, problems)
