"""Stored signatures hold: each envelope is signed by its originator's registered signer, sits
under its own key, is addressed to that originator, and names the payer that signed it.

``envelope_problems`` judges one row (pure); ``check_signatures`` gathers a node's problems
from an ``EnvelopeScan``, which judged every distinct bucket of rows once.

    problems = check_signatures(scan, "node-200")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shakedown.observe import IndexRow
from shakedown.verify.opened import Opened

if TYPE_CHECKING:
    from shakedown.verify.envelopes import EnvelopeScan

SHOW = 5  # problems named per node; the rest are counted


def envelope_problems(row: IndexRow, env: Opened | None, signers: dict[int, str]) -> list[str]:
    """What is wrong with one stored envelope (pure); names it ``originator:sequence``."""
    key = f"envelope {row.originator_node_id}:{row.sequence_id}"
    if env is None:
        return [f"{key} changed while it was being verified; run again"]
    if env.error.startswith("bytes do not parse"):
        return [f"{key}: {env.error}"]
    problems = []
    if (env.originator_node_id, env.sequence_id) != (row.originator_node_id, row.sequence_id):
        problems.append(f"{key} holds the envelope of "
                        f"{env.originator_node_id}:{env.sequence_id}")
    registered = signers.get(row.originator_node_id)
    if registered is None:
        problems.append(f"{key}: originator {row.originator_node_id} is not registered")
    elif not env.signer:
        problems.append(f"{key}: {_reason(env.error, 'originator')}; expected the registered "
                        f"signer {registered}")
    elif env.signer.lower() != registered.lower():
        problems.append(f"{key}: originator signature recovers to {env.signer}; the registered "
                        f"signer of node {row.originator_node_id} is {registered}")
    if env.target_originator != row.originator_node_id:
        problems.append(f"{key}: payer envelope addressed to node {env.target_originator}")
    if not env.payer:
        problems.append(f"{key}: {_reason(env.error, 'payer')}")
    elif row.payer is None:
        problems.append(f"{key}: no stored payer (gateway_envelopes_meta); the payer "
                        f"signature recovers to {env.payer}")
    elif row.payer.lower() != env.payer.lower():
        problems.append(f"{key}: stored payer {row.payer}; the payer signature recovers to "
                        f"{env.payer}")
    return problems


def _reason(error: str, which: str) -> str:
    part = next((p for p in error.split("; ") if p.startswith(which)), f"{which} signature")
    return part.replace(" signature: ", " signature does not recover: ", 1)


def named(node: str, problems: list[str]) -> list[str]:
    """At most SHOW problems, each prefixed with the node; the rest counted."""
    lines = [f"{node}: {p}" for p in problems[:SHOW]]
    if len(problems) > SHOW:
        lines.append(f"{node}: and {len(problems) - SHOW} more")
    return lines


def check_signatures(scan: EnvelopeScan, node: str) -> list[str]:
    """Every envelope stored on ``node`` holds its signatures and its place."""
    if node in scan.errors:
        return [scan.errors[node]]
    problems: list[str] = []
    for verdict in scan.verdicts_of(node):
        problems += verdict.signature_problems
    return named(node, problems)
