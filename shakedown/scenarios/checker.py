"""The history set checker (Jepsen's set checker, applied to replication). Pure: returns data.

Every publish the client saw acknowledged (originator, sequence id, digest of the stored
envelope) must be present exactly once, byte for byte, on every canonical node at the end,
whatever faults happened (a client envelope sent to several nodes: once per node it went to).
Publishes that failed or timed out may be present or absent; the checker counts both. An
envelope no publish of this run carried is a phantom.

    result = check_set(acked_from(events), unsure_from(events), stores)
    result.valid, result.details["nodes"]["node-200"]["lost"]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 5  # keys shown per problem; counts are always complete


@dataclass(frozen=True)
class AckRecord:
    """One acknowledged envelope: where it lives, what its bytes hash to, what it carried."""

    originator: int
    sequence_id: int
    digest: str    # sha256 of the originator envelope as acknowledged
    payload: str   # digest of the client envelope it carries (identifies the publish)

    @property
    def key(self) -> tuple[int, int]:
        return (self.originator, self.sequence_id)


# One node's store: (originator, sequence id) -> (envelope digest, payload digest)
Store = Mapping[tuple[int, int], tuple[str, str]]


@dataclass(frozen=True)
class SetResult:
    valid: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def acked_from(events: Iterable[Mapping[str, Any]]) -> list[AckRecord]:
    """Every acknowledged envelope in a history's ``ok`` publish events."""
    return [AckRecord(int(a[0]), int(a[1]), str(a[2]), str(a[3]))
            for e in events if e.get("f") == "publish" and e.get("type") == "ok"
            for a in e.get("acks", ())]


def unsure_from(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Payload digests of publishes that failed or timed out (outcome unknown to the client)."""
    return [str(p) for e in events
            if e.get("f") == "publish" and e.get("type") in ("fail", "info")
            for p in e.get("payloads", ())]


def check_set(acked: list[AckRecord], unsure: list[str], stores: Mapping[str, Store]) -> SetResult:
    """Judge every node's final store against the acknowledged and unsure publishes."""
    if not stores:
        return SetResult(False, "no canonical node to check", {"nodes": {}})
    conflicts = _conflicting_acks(acked)
    published = Counter(a.payload for a in acked) + Counter(unsure)
    nodes = {name: _judge(acked, published, store) for name, store in stores.items()}
    unsure_counts = _unsure_counts(unsure, stores)
    bad = {n: d for n, d in nodes.items()
           if d["lost"] or d["corrupt"] or d["duplicated"] or d["phantom"]}
    details: dict[str, Any] = {
        "acknowledged": len(acked), "unsure": len(unsure), "conflicting_acks": conflicts,
        "unsure_outcome": unsure_counts, "nodes": nodes,
    }
    if conflicts:
        return SetResult(False, f"{len(conflicts)} sequence ids acknowledged twice with different "
                                f"bytes, e.g. {conflicts[0]}", details)
    if bad:
        return SetResult(False, "; ".join(_describe(n, d) for n, d in sorted(bad.items())), details)
    return SetResult(True, f"{len(acked)} acknowledged envelopes present exactly once, byte for "
                           f"byte, on {len(stores)} nodes; unsure publishes: "
                           f"{unsure_counts['present_everywhere']} present, "
                           f"{unsure_counts['absent_everywhere']} absent, "
                           f"{unsure_counts['partial']} on some nodes", details)


def _conflicting_acks(acked: list[AckRecord]) -> list[str]:
    digests: dict[tuple[int, int], str] = {}
    out = []
    for a in acked:
        have = digests.setdefault(a.key, a.digest)
        if have != a.digest:
            out.append(f"{a.originator}:{a.sequence_id}")
    return out


def _judge(acked: list[AckRecord], published: Counter[str], store: Store) -> dict[str, Any]:
    """Lost, corrupt (other bytes at the key), duplicated (a client envelope stored under more
    keys than it was published: once, or once per node it was sent to), phantom."""
    lost, corrupt = [], []
    for a in acked:
        have = store.get(a.key)
        if have is None:
            lost.append(a.key)
        elif have[0] != a.digest:
            corrupt.append(a.key)
    per_payload = Counter(payload for _, payload in store.values())
    duplicated = sorted(p for p, n in per_payload.items() if n > published[p] > 0)
    phantom = sorted(k for k, (_, p) in store.items() if p not in published)
    return {
        "stored": len(store), "lost": len(lost), "corrupt": len(corrupt),
        "duplicated": len(duplicated), "phantom": len(phantom),
        "lost_examples": [f"{o}:{s}" for o, s in sorted(lost)[:EXAMPLES]],
        "corrupt_examples": [f"{o}:{s}" for o, s in sorted(corrupt)[:EXAMPLES]],
        "duplicated_examples": duplicated[:EXAMPLES],
        "phantom_examples": [f"{o}:{s}" for o, s in phantom[:EXAMPLES]],
    }


def _unsure_counts(unsure: list[str], stores: Mapping[str, Store]) -> dict[str, int]:
    held = [{p for _, p in store.values()} for store in stores.values()]
    everywhere = sum(1 for p in unsure if all(p in h for h in held))
    nowhere = sum(1 for p in unsure if not any(p in h for h in held))
    return {"present_everywhere": everywhere, "absent_everywhere": nowhere,
            "partial": len(unsure) - everywhere - nowhere}


def _describe(node: str, d: Mapping[str, Any]) -> str:
    parts = []
    for what in ("lost", "corrupt", "duplicated", "phantom"):
        if d[what]:
            parts.append(f"{d[what]} {what} (e.g. {', '.join(d[what + '_examples'][:3])})")
    return f"{node}: " + ", ".join(parts)
