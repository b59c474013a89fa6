"""What a snapshot saw, as plain frozen data (this module imports nothing of ours).

``snapshot`` fills these from the databases, the chain and the health endpoints; ``judge``
compares them with the model's prediction; ``to_json`` is the dump a person reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stored:
    """One stored envelope: sha256 of its bytes, the publish it carries (digest of the client
    envelope), the payer its meta row names (lowercase, "" if none) and its fee."""

    digest: str
    payload: str
    payer: str
    fee: int


@dataclass(frozen=True)
class NodeView:
    """One node's database (read in one repeatable-read transaction) and health answer."""

    name: str
    error: str = ""
    envelopes: Mapping[tuple[int, int], Stored] = field(default_factory=dict)
    clock: Mapping[int, int] = field(default_factory=dict)
    # (payer, originator) -> (messages, picodollars) of unsettled usage
    usage: Mapping[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    serving: bool | None = None

    @property
    def readable(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class ChainView:
    """The chain at one block: canonical set, payers' money, the rate registry."""

    block: int | None = None
    error: str = ""
    canonical: frozenset[int] = frozenset()
    balances: Mapping[str, int] = field(default_factory=dict)   # payer -> PayerRegistry balance
    pending: Mapping[str, int] = field(default_factory=dict)    # payer -> pending withdrawal
    settled: Mapping[str, int] = field(default_factory=dict)    # payer -> fees charged so far
    rates: int = 0
    last_fee: int | None = None


@dataclass(frozen=True)
class Snapshot:
    t: float
    nodes: Mapping[str, NodeView]
    gateways: Mapping[str, bool] = field(default_factory=dict)  # live gateway -> serving
    chain: ChainView = field(default_factory=ChainView)

    def to_json(self) -> dict[str, Any]:
        """A readable dump: per node its ranges of sequence ids per originator, clock, usage
        and health; the chain's block, canonical set, money and rates."""
        nodes: dict[str, Any] = {}
        for name, v in sorted(self.nodes.items()):
            if not v.readable:
                nodes[name] = {"error": v.error, "serving": v.serving}
                continue
            by_originator: dict[int, list[int]] = {}
            for o, s in v.envelopes:
                by_originator.setdefault(o, []).append(s)
            nodes[name] = {
                "serving": v.serving,
                "held": {str(o): ranges(seqs) for o, seqs in sorted(by_originator.items())},
                "count": len(v.envelopes),
                "clock": {str(o): s for o, s in sorted(v.clock.items())},
                "usage": {f"{p} at {o}": {"messages": n, "picodollars": f}
                          for (p, o), (n, f) in sorted(v.usage.items())},
            }
        c = self.chain
        return {"t": round(self.t, 3), "nodes": nodes, "gateways": dict(sorted(self.gateways
                                                                             .items())),
                "chain": {"block": c.block, "error": c.error or None,
                          "canonical": sorted(c.canonical),
                          "balances": dict(sorted(c.balances.items())),
                          "pending": dict(sorted(c.pending.items())),
                          "settled": dict(sorted(c.settled.items())),
                          "rates": c.rates, "last_fee": c.last_fee}}


def ranges(seqs: list[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` -> ``"1-3,5,7-8"``."""
    out: list[str] = []
    for s in sorted(seqs):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == s - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{s}"
        elif out and "-" not in out[-1] and int(out[-1]) == s - 1:
            out[-1] = f"{out[-1]}-{s}"
        else:
            out.append(str(s))
    return ",".join(out)
