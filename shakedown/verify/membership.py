"""Checks of the chain and of who the nodes are: contracts, registrations, canonical set, node_info.

Each check returns its problems as one line each (empty: the property holds), naming the
target, what was expected and what was seen.

    problems = check_registration(chain, target.node("node-200"))
"""

from __future__ import annotations

from collections.abc import Iterable

import coincurve
import psycopg

from refnode.envelopes import address_of
from shakedown.chain.contracts import CONTRACT_NAMES, artifact
from shakedown.chain.ops import Chain
from shakedown.chain.tx import call
from shakedown.errors import ChainError
from shakedown.observe import read_node_info
from shakedown.verify.target import NodeTarget

# (contract field, getter, contract field it must point at): how the contracts are wired.
WIRING = (
    ("payer_registry", "token", "fee_token"),
    ("payer_registry", "settler", "payer_report_manager"),
    ("payer_registry", "feeDistributor", "distribution_manager"),
    ("payer_report_manager", "nodeRegistry", "node_registry"),
    ("payer_report_manager", "payerRegistry", "payer_registry"),
    ("distribution_manager", "nodeRegistry", "node_registry"),
    ("distribution_manager", "payerReportManager", "payer_report_manager"),
    ("distribution_manager", "token", "fee_token"),
)
_PUSH1, _PUSH32 = 0x60, 0x7F


def immutable_mask(code: bytes) -> set[int]:
    """Offsets of immutable placeholders (``PUSH32`` of 32 zero bytes) in compiled code."""
    masked: set[int] = set()
    i = 0
    while i < len(code):
        op = code[i]
        if _PUSH1 <= op <= _PUSH32:
            width = op - _PUSH1 + 1
            if op == _PUSH32 and code[i + 1:i + 33] == bytes(32):
                masked.update(range(i + 1, i + 33))
            i += width
        i += 1
    return masked


def code_matches(deployed: bytes, compiled: bytes) -> bool:
    """Deployed code equals the compiled runtime code, immutables aside."""
    if len(deployed) != len(compiled):
        return False
    masked = immutable_mask(compiled)
    return all(a == b for i, (a, b) in enumerate(zip(deployed, compiled, strict=True))
               if i not in masked)


def check_contracts(chain: Chain) -> list[str]:
    """Every recorded address holds its compiled contract, and they point at one another."""
    problems = []
    for field, name in CONTRACT_NAMES.items():
        address = getattr(chain.addresses, field)
        code = bytes(chain.w3.eth.get_code(address))
        compiled = bytes.fromhex(artifact(name).deployed_bytecode.removeprefix("0x"))
        if not code:
            problems.append(f"{name} at {address}: no code; expected the compiled {name}")
        elif not code_matches(code, compiled):
            problems.append(f"{name} at {address}: {len(code)} bytes of other code; expected "
                            f"the compiled {name} ({len(compiled)} bytes)")
    if problems:
        return problems  # wiring reads would fail on missing contracts
    for field, getter, points_at in WIRING:
        contract = getattr(chain.contracts, field)
        expected = getattr(chain.addresses, points_at)
        try:
            seen = call(getattr(contract.functions, getter)())
        except ChainError as e:
            problems.append(f"{CONTRACT_NAMES[field]}.{getter}(): {e}")
            continue
        if str(seen).lower() != expected.lower():
            problems.append(f"{CONTRACT_NAMES[field]}.{getter}() is {seen}; expected the "
                            f"recorded {CONTRACT_NAMES[points_at]} {expected}")
    return problems


def check_registration(chain: Chain, node: NodeTarget) -> list[str]:
    """The node is registered under its id with the expected signer and address."""
    try:
        record = chain.get_node(node.node_id)
    except ChainError as e:
        return [f"{node.name}: not registered ({e})"]
    problems = []
    if record.signer.lower() != node.signer.lower():
        problems.append(f"{node.name}: registered signer {record.signer}; expected {node.signer}")
    if record.http_address != node.http_address:
        problems.append(f"{node.name}: registered at {record.http_address!r}; expected "
                        f"{node.http_address!r}")
    return problems


def check_canonical(chain: Chain, expected: Iterable[int]) -> list[str]:
    """The NodeRegistry's canonical set is exactly ``expected``."""
    seen, want = set(chain.canonical_node_ids()), set(expected)
    if seen == want:
        return []
    parts = []
    if want - seen:
        parts.append(f"missing {', '.join(map(str, sorted(want - seen)))}")
    if seen - want:
        parts.append(f"unexpected {', '.join(map(str, sorted(seen - want)))}")
    return [f"canonical set is {sorted(seen)}; expected {sorted(want)}: {'; '.join(parts)}"]


def key_address(public_key: bytes) -> str:
    """The address a node_info key names: refnode and xmtpd keep the 65-byte uncompressed
    public key (a 33-byte compressed one reads too), refnodes before it the 20-byte address."""
    if len(public_key) == 20:
        return "0x" + public_key.hex()
    try:
        return address_of(coincurve.PublicKey(public_key).format(compressed=False))
    except (ValueError, TypeError) as e:
        return f"<not a key: {len(public_key)} bytes: {e}>"


def check_node_info(conn: psycopg.Connection, node: NodeTarget, chain: Chain) -> list[str]:
    """The database says it belongs to this node, with the signer the NodeRegistry holds."""
    info = read_node_info(conn)
    if info is None:
        return [f"{node.name}: node_info is empty; expected node {node.node_id}"]
    node_id, key = info
    problems = []
    if node_id != node.node_id:
        problems.append(f"{node.name}: node_info says node {node_id}; expected {node.node_id}")
    try:
        registered = chain.get_node(node.node_id).signer
    except ChainError as e:
        return [*problems, f"{node.name}: cannot compare node_info with the chain: {e}"]
    address = key_address(key)
    if address.lower() != registered.lower():
        problems.append(f"{node.name}: node_info key is {address}; the NodeRegistry has signer "
                        f"{registered} for node {node.node_id}")
    return problems
