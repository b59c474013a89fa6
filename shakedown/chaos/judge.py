"""Compare a snapshot with the model's prediction: one list of mismatches, each naming the
property, the node, what was predicted and what was seen, and the events involved. Pure.

Liveness properties (``held``, ``serving``, ``canonical``) may take a while to come true after
faults healed: a checkpoint polls until they hold or its settle deadline passes, and judges the
last snapshot. Safety properties hold on every snapshot; one violation is final.

    found = judge(prediction, snapshot, previous)   # [] when everything agrees
    found[0].message(event=12)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from shakedown.chaos.model import Prediction
from shakedown.chaos.observed import NodeView, Snapshot, ranges

PROPERTIES = ("held", "intact", "contiguous", "clock", "unique", "payer", "usage", "monotonic",
              "canonical", "serving", "balance", "rates")
LIVENESS = frozenset({"held", "serving", "canonical"})
EXAMPLES = 3


@dataclass(frozen=True)
class Mismatch:
    """One property that does not hold: where, predicted against observed."""

    property: str
    node: str
    predicted: str
    observed: str
    events: tuple[int, ...] = ()     # events whose effects are involved (for shrinking too)

    def message(self, event: int, checkpoint: str = "") -> str:
        where = checkpoint or f"after event {event}"
        involved = f" (events {', '.join(map(str, self.events[:6]))})" if self.events else ""
        return (f"{where}: {self.property} on {self.node}: predicted {self.predicted}; "
                f"observed {self.observed}{involved}")

    def to_json(self) -> dict[str, object]:
        return {"property": self.property, "node": self.node, "predicted": self.predicted,
                "observed": self.observed, "events": list(self.events)}


def _keys(keys: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"{o}:{s}" for o, s in sorted(keys)[:EXAMPLES])
    return shown + (f" and {len(keys) - EXAMPLES} more" if len(keys) > EXAMPLES else "")


def held(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, need in sorted(p.must_hold.items()):
        view = snap.nodes.get(node)
        if not need or view is None:
            continue
        if not view.readable:
            out.append(Mismatch("held", node, f"{len(need)} acknowledged envelopes readable",
                                f"database unreadable ({view.error})"))
            continue
        missing = [k for k in need if k not in view.envelopes]
        if missing:
            events = tuple(sorted({need[k].event for k in missing}))
            out.append(Mismatch("held", node, f"all {len(need)} acknowledged envelopes it can "
                                f"reach present", f"{len(missing)} missing: {_keys(missing)}; "
                                f"clock {dict(sorted(view.clock.items()))}", events))
    return out


def intact(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        bad = [k for k, s in view.envelopes.items() if k in p.acked and
               s.digest != p.acked[k].digest]
        if bad:
            events = tuple(sorted({p.acked[k].event for k in bad}))
            out.append(Mismatch("intact", node, "the acknowledged bytes at every key",
                                f"other bytes at {_keys(bad)}", events))
    return out


def _by_originator(view: NodeView) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for o, s in view.envelopes:
        out[o].append(s)
    return out


def contiguous(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        for o, seqs in sorted(_by_originator(view).items()):
            if len(seqs) != max(seqs) or min(seqs) != 1:
                gap = set(range(1, max(seqs) + 1)) - set(seqs)
                events = tuple(sorted({p.acked[(o, q)].event for q in gap if (o, q) in p.acked}))
                out.append(Mismatch("contiguous", node, f"originator {o}: sequence ids 1-"
                                    f"{max(seqs)} without a gap", f"held {ranges(seqs)}",
                                    events))
    return out


def clock(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        if not view.readable:
            continue
        tops = {o: max(s) for o, s in _by_originator(view).items()}
        for o in sorted(set(tops) | set(view.clock)):
            seen = view.clock.get(o, 0)
            if seen != tops.get(o, 0):
                out.append(Mismatch("clock", node, f"clock[{o}] = {tops.get(o, 0)}, the highest "
                                    "sequence id stored", f"clock[{o}] = {seen}"))
            elif seen > p.clock_max.get(o, 0):
                out.append(Mismatch("clock", node, f"clock[{o}] <= {p.clock_max.get(o, 0)} (what "
                                    "was acknowledged or may have landed)",
                                    f"clock[{o}] = {seen}"))
    return out


def unique(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        counts = Counter(s.payload for s in view.envelopes.values())
        twice = [k for k, s in view.envelopes.items() if counts[s.payload] > 1]
        phantom = [k for k, s in view.envelopes.items() if s.payload not in p.payer_of]
        if twice:
            out.append(Mismatch("unique", node, "each publish stored once",
                                f"one publish under several keys: {_keys(twice)}"))
        if phantom:
            out.append(Mismatch("unique", node, "only envelopes this run published",
                                f"{len(phantom)} no publish carried: {_keys(phantom)}"))
    return out


def payer(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        bad = [k for k, s in view.envelopes.items() if s.payload in p.payer_of
               and s.payer != p.payer_of[s.payload]]
        if bad:
            k = sorted(bad)[0]
            out.append(Mismatch("payer", node, f"{k[0]}:{k[1]} paid by "
                                f"{p.payer_of[view.envelopes[k].payload]}",
                                f"{len(bad)} envelopes name another payer, e.g. "
                                f"{view.envelopes[k].payer or 'none'}"))
    return out


def expected_usage(p: Prediction, view: NodeView) -> dict[tuple[str, int], tuple[int, int]]:
    """(payer, originator) -> (messages, picodollars) of the envelopes the node holds, each
    charged to the payer the model knows signed it, at the fee its stored bytes carry."""
    out: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for (o, _), s in view.envelopes.items():
        who = p.payer_of.get(s.payload)
        if who is not None:
            out[(who, o)][0] += 1
            out[(who, o)][1] += s.fee
    return {k: (v[0], v[1]) for k, v in out.items()}


def usage(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node, view in sorted(snap.nodes.items()):
        if not view.readable:
            continue
        want = expected_usage(p, view)
        for who, o in sorted(set(want) | set(view.usage)):
            n, fees = want.get((who, o), (0, 0))
            got = view.usage.get((who, o), (0, 0))
            if got != (n, fees):
                events = tuple(sorted({a.event for k, a in p.acked.items()
                                       if k in view.envelopes and a.payer == who
                                       and a.originator == o}))
                out.append(Mismatch("usage", node, f"payer {who} at originator {o}: {n} "
                                    f"messages, {fees} picodollars (the envelopes it holds)",
                                    f"unsettled usage {got[0]} messages, {got[1]} picodollars",
                                    events))
    return out


def monotonic(p: Prediction, snap: Snapshot, previous: Mapping[str, NodeView]) -> list[Mismatch]:
    out = []
    for node, before in sorted(previous.items()):
        now = snap.nodes.get(node)
        if now is None or not now.readable or not before.readable:
            continue
        gone = [k for k, s in before.envelopes.items()
                if k not in now.envelopes or now.envelopes[k].digest != s.digest]
        if gone:
            out.append(Mismatch("monotonic", node, "everything held before still held",
                                f"{len(gone)} gone or changed since the last snapshot: "
                                f"{_keys(gone)}"))
    return out


def canonical(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    c = snap.chain
    if c.error:
        return [Mismatch("canonical", "chain", f"canonical nodes {sorted(p.canonical)}",
                         f"chain unreadable ({c.error})")]
    if c.canonical != p.canonical:
        return [Mismatch("canonical", "chain", f"canonical nodes {sorted(p.canonical)}",
                         f"{sorted(c.canonical)}")]
    return []


def serving(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    out = []
    for node in sorted(p.up):
        view = snap.nodes.get(node)
        if view is None or view.serving is not True:
            out.append(Mismatch("serving", node, "answers health: serving",
                                "no answer" if view is None or view.serving is None
                                else "not serving"))
    for node in sorted(p.down):
        view = snap.nodes.get(node)
        if view is not None and view.serving:
            out.append(Mismatch("serving", node, "down (stopped by a fault)",
                                "answers health: serving"))
    for gw in sorted(p.gateways):
        if snap.gateways.get(gw) is not True:
            out.append(Mismatch("serving", gw, "answers health: serving", "no answer"))
    return out


def balance(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    """Per payer at one block: balance + pending + charged = deposits; pending = requested;
    nobody charged more than the envelopes it signed that any node holds cost."""
    c = snap.chain
    if c.error:
        return []
    out = []
    held_fees: dict[str, int] = defaultdict(int)
    seen: set[tuple[int, int]] = set()
    for view in snap.nodes.values():
        for k, s in view.envelopes.items():
            if k not in seen and s.payload in p.payer_of:
                seen.add(k)
                held_fees[p.payer_of[s.payload]] += s.fee
    every_node_read = all(v.readable for v in snap.nodes.values())
    for who in sorted({*p.deposits, *p.withdrawals, *c.balances, *c.settled, *c.pending}):
        deposits = p.deposits.get(who)
        total = c.balances.get(who, 0) + c.pending.get(who, 0) + c.settled.get(who, 0)
        low, high = (deposits.low, deposits.high) if deposits else (0, 0)
        if not low <= total <= high:
            out.append(Mismatch("balance", who, f"balance + pending + charged within deposits "
                                f"{low}..{high} at block {c.block}", f"balance "
                                f"{c.balances.get(who, 0)} + pending {c.pending.get(who, 0)} + "
                                f"charged {c.settled.get(who, 0)} = {total}"))
        asked = p.withdrawals.get(who)
        lo_w, hi_w = (asked.low, asked.high) if asked else (0, 0)
        if not lo_w <= c.pending.get(who, 0) <= hi_w:
            out.append(Mismatch("balance", who, f"pending withdrawal within {lo_w}..{hi_w}",
                                f"pending {c.pending.get(who, 0)}"))
        if every_node_read and c.settled.get(who, 0) > held_fees.get(who, 0):
            out.append(Mismatch("balance", who, f"charged at most {held_fees.get(who, 0)} "
                                "picodollars (the envelopes it signed that nodes hold)",
                                f"charged {c.settled.get(who, 0)}"))
    return out


def rates(p: Prediction, snap: Snapshot) -> list[Mismatch]:
    c = snap.chain
    if c.error:
        return []
    out = []
    if c.rates not in p.rates:
        out.append(Mismatch("rates", "chain", f"{p.rates.low}..{p.rates.high} rates in the "
                            "RateRegistry", f"{c.rates}"))
    elif p.last_fee is not None and c.rates == p.rates.high and c.last_fee != p.last_fee:
        out.append(Mismatch("rates", "chain", f"last message fee {p.last_fee}",
                            f"{c.last_fee}"))
    return out


def judge(p: Prediction, snap: Snapshot, previous: Mapping[str, NodeView] | None = None
          ) -> list[Mismatch]:
    """Every property, in ``PROPERTIES`` order; ``previous``: the last readable view of each
    node (for ``monotonic``)."""
    return [*held(p, snap), *intact(p, snap), *contiguous(p, snap), *clock(p, snap),
            *unique(p, snap), *payer(p, snap), *usage(p, snap),
            *monotonic(p, snap, previous or {}), *canonical(p, snap), *serving(p, snap),
            *balance(p, snap), *rates(p, snap)]


def settled(found: list[Mismatch]) -> bool:
    """Whether polling can stop: every liveness property holds (safety ones are judged on
    every snapshot anyway)."""
    return not any(m.property in LIVENESS for m in found)
