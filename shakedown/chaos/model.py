"""The chaos model: pure Python, no I/O. It hears what each event did (faults in force or
cleared, publishes acknowledged or unsure, chain operations) and predicts what a snapshot must
show: which nodes are canonical and serving, which acknowledged envelopes each node must hold
now and which may still be missing, how far each vector clock may reach, who pays for each
envelope, and the payers' money on-chain.

Replication is from originator to reader, over the reader's stream to the originator's proxy.
An envelope acknowledged by originator O must be on reader N once both are up and canonical and
no partition cuts N off from O; until then it may be missing. A node always holds what it
acknowledged itself (durability), even while it is down. Faults that hold only within a step
(toxics, pause, restart, clock skew, database stop, mining stop) are over at every checkpoint:
the checkpoint polls to a settle deadline before judging what they delayed.

    model = Model({"node-100": 100, "node-200": 200}, payers={"payer-0": "0xab.."})
    model.down(3, "stop@node-200", "node-200")
    model.published(4, acks=[Ack(100, 1, "d1", "p1", "0xab..", 4)])
    model.predict().must_hold["node-200"]    # {} while node-200 is down
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ack:
    """One acknowledged envelope: its key, its bytes' digest, the publish it carried, the
    payer it was signed for (lowercase address) and the event that published it."""

    originator: int
    sequence: int
    digest: str
    payload: str
    payer: str
    event: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.originator, self.sequence)


@dataclass(frozen=True)
class Unsure:
    """One envelope of a publish whose outcome the client does not know: it may be stored at
    ``originator`` (0: wherever the gateway sent it) or nowhere."""

    payload: str
    payer: str
    originator: int
    event: int


@dataclass(frozen=True)
class Range:
    """An integer known to lie within [low, high]."""

    low: int = 0
    high: int = 0

    def add(self, amount: int, sure: bool) -> Range:
        return Range(self.low + amount if sure else self.low, self.high + amount)

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Prediction:
    """What a snapshot taken now must show (``must_hold``: node -> key -> ack)."""

    event: int
    final: bool
    nodes: Mapping[str, int]                      # every node whose database exists
    canonical: frozenset[int]
    up: frozenset[str]                            # must answer health
    down: frozenset[str]                          # must not
    gateways: frozenset[str]
    must_hold: Mapping[str, Mapping[tuple[int, int], Ack]]
    may_miss: Mapping[str, int]                   # acked envelopes a node may still lack
    clock_max: Mapping[int, int]                  # originator -> highest sequence possible
    acked: Mapping[tuple[int, int], Ack]
    payer_of: Mapping[str, str]                   # payload digest -> payer address
    deposits: Mapping[str, Range]                 # payer address -> deposited
    withdrawals: Mapping[str, Range]              # payer address -> requested (pending)
    rates: Range                                  # rates appended to the RateRegistry
    last_fee: int | None                          # message fee of the last sure append

    def to_json(self) -> dict[str, object]:
        return {"event": self.event, "final": self.final, "canonical": sorted(self.canonical),
                "up": sorted(self.up), "down": sorted(self.down),
                "gateways": sorted(self.gateways),
                "must_hold": {n: len(k) for n, k in sorted(self.must_hold.items())},
                "may_miss": dict(sorted(self.may_miss.items())),
                "clock_max": {str(o): s for o, s in sorted(self.clock_max.items())},
                "acked": len(self.acked),
                "deposits": {p: [r.low, r.high] for p, r in sorted(self.deposits.items())},
                "withdrawals": {p: [r.low, r.high] for p, r in sorted(self.withdrawals.items())},
                "rates": [self.rates.low, self.rates.high], "last_fee": self.last_fee}


@dataclass
class _Cut:
    """An open partition: the (reader, originator) pairs it cuts; ``isolated`` is a node
    nobody can read from at all (a black hole also cuts nodes that join later)."""

    pairs: frozenset[tuple[int, int]]
    isolated: int | None = None


@dataclass
class Model:
    """The predicted state; feed it every event's outcome in event order."""

    nodes: dict[str, int]
    payers: dict[str, str] = field(default_factory=dict)        # label -> address
    gateways: dict[str, str] = field(default_factory=dict)      # live gateway -> payer address
    canonical: set[str] = field(default_factory=set)
    down_nodes: dict[str, str] = field(default_factory=dict)    # node -> window
    removed: dict[str, str] = field(default_factory=dict)       # window -> node out of network
    added: dict[str, str] = field(default_factory=dict)         # window -> node churned in
    retired: set[str] = field(default_factory=set)              # churned in, then taken out
    cuts: dict[str, _Cut] = field(default_factory=dict)         # window -> partition
    acked: dict[tuple[int, int], Ack] = field(default_factory=dict)
    unsure: list[Unsure] = field(default_factory=list)
    payer_of: dict[str, str] = field(default_factory=dict)      # payload -> payer address
    deposits: dict[str, Range] = field(default_factory=dict)
    withdrawals: dict[str, Range] = field(default_factory=dict)
    rates: Range = field(default_factory=Range)                 # rates in the registry
    last_fee: int | None = None
    event: int = 0
    final: bool = False

    def __post_init__(self) -> None:
        if not self.canonical:
            self.canonical = set(self.nodes)
        self.payers = {k: v.lower() for k, v in self.payers.items()}
        self.gateways = {k: v.lower() for k, v in self.gateways.items()}

    # --- what happened ----------------------------------------------------------------------

    def _at(self, event: int) -> None:
        self.event = max(self.event, event)

    def published(self, event: int, acks: Iterable[Ack] = (), unsure: Iterable[Unsure] = ()
                  ) -> None:
        """A publish event's calls: the acknowledged envelopes and those of unknown outcome."""
        self._at(event)
        for a in acks:
            self.acked[a.key] = a
            self.payer_of[a.payload] = a.payer.lower()
        for u in unsure:
            self.unsure.append(u)
            self.payer_of[u.payload] = u.payer.lower()

    def down(self, event: int, window: str, node: str) -> None:
        """A node stopped or killed (stays down until its window is cleared)."""
        self._at(event)
        self.down_nodes[node] = window

    def partitioned(self, event: int, window: str, shape: str, group: Iterable[str],
                    others: Iterable[str] = ()) -> None:
        """iptables cut in force: ``node`` (``group`` is the one black-holed node: it reads
        nobody, nobody reads it), ``groups`` (no stream either way between ``group`` and
        ``others``), ``asymmetric`` (``group`` cannot read ``others``; they still read it)."""
        self._at(event)
        a = [self.nodes[n] for n in group]
        b = [self.nodes[n] for n in others]
        if shape == "node":
            (x,) = a
            peers = [self.nodes[n] for n in self.canonical if self.nodes[n] != x]
            self.cuts[window] = _Cut(frozenset((x, o) for o in peers), isolated=x)
        elif shape == "groups":
            self.cuts[window] = _Cut(frozenset({*((r, o) for r in a for o in b),
                                                *((r, o) for r in b for o in a)}))
        elif shape == "asymmetric":
            self.cuts[window] = _Cut(frozenset((r, o) for r in a for o in b))
        else:
            raise ValueError(f"unknown partition shape {shape!r}")

    def churn_added(self, event: int, window: str, node: str, node_id: int) -> None:
        self._at(event)
        self.nodes[node] = node_id
        self.canonical.add(node)
        self.added[window] = node

    def churn_removed(self, event: int, window: str, node: str) -> None:
        self._at(event)
        self.canonical.discard(node)
        self.removed[window] = node

    def cleared(self, event: int, window: str) -> None:
        """A window's fault was cleared (a closing event, its expiry, or the final heal)."""
        self._at(event)
        for node, w in list(self.down_nodes.items()):
            if w == window:
                del self.down_nodes[node]
        self.cuts.pop(window, None)
        if window in self.removed:
            self.canonical.add(self.removed.pop(window))
        if window in self.added:
            node = self.added.pop(window)
            self.canonical.discard(node)
            self.retired.add(node)

    def gateway_added(self, event: int, name: str, payer: str) -> None:
        self._at(event)
        self.gateways[name] = payer.lower()

    def gateway_removed(self, event: int, name: str) -> None:
        self._at(event)
        self.gateways.pop(name, None)

    def deposited(self, event: int, payer: str, amount: int, sure: bool) -> None:
        """A deposit: ``sure`` when its transaction was mined; else it may or may not be."""
        self._at(event)
        key = payer.lower()
        self.deposits[key] = self.deposits.get(key, Range()).add(amount, sure)

    def withdrawal_requested(self, event: int, payer: str, amount: int, sure: bool) -> None:
        self._at(event)
        key = payer.lower()
        self.withdrawals[key] = self.withdrawals.get(key, Range()).add(amount, sure)

    def rates_set(self, event: int, message_fee: int, sure: bool) -> None:
        self._at(event)
        self.rates = self.rates.add(1, sure)
        # An unsure append may land after a later sure one: the last fee is then unknown.
        self.last_fee = message_fee if self.rates.low == self.rates.high else None

    def final_heal(self) -> None:
        """Every fault cleared, as the run's final heal does (newest first)."""
        for window in [*self.down_nodes.values(), *self.cuts, *self.removed, *self.added]:
            self.cleared(self.event, window)
        self.final = True

    # --- what must be seen ------------------------------------------------------------------

    def up(self) -> set[str]:
        return {n for n in self.canonical if n not in self.down_nodes}

    def cut(self, reader: int, originator: int) -> bool:
        return any((reader, originator) in c.pairs or c.isolated == originator
                   for c in self.cuts.values())

    def reaches(self, reader: str, originator: str, up: set[str]) -> bool:
        """Whether ``reader`` replicates ``originator``'s envelopes now."""
        return reader in up and originator in up and \
            not self.cut(self.nodes[reader], self.nodes[originator])

    def clock_max(self) -> dict[int, int]:
        """The highest sequence id each originator can have given: one per envelope it
        acknowledged, plus one per envelope of unknown outcome that may have reached it."""
        acked = Counter(o for o, _ in self.acked)
        maybe = Counter(u.originator for u in self.unsure)
        anywhere = maybe.pop(0, 0)
        ids = set(self.nodes.values())
        return {o: acked[o] + maybe[o] + anywhere for o in ids}

    def predict(self) -> Prediction:
        up = self.up()
        by_originator: dict[int, list[Ack]] = {}
        for a in self.acked.values():
            by_originator.setdefault(a.originator, []).append(a)
        names = {i: n for n, i in self.nodes.items()}
        must: dict[str, dict[tuple[int, int], Ack]] = {}
        may_miss: dict[str, int] = {}
        for node, node_id in self.nodes.items():
            held: dict[tuple[int, int], Ack] = {}
            missing_ok = 0
            for originator, acks in by_originator.items():
                source = names.get(originator)
                # After the final heal every envelope must be everywhere: churned-in nodes
                # leave only once their envelopes replicated (the engine waits for it).
                if originator == node_id or (node in up and self.final) or (
                        source is not None and self.reaches(node, source, up)):
                    held.update((a.key, a) for a in acks)
                else:
                    missing_ok += len(acks)
            must[node] = held
            may_miss[node] = missing_ok
        return Prediction(
            event=self.event, final=self.final, nodes=dict(self.nodes),
            canonical=frozenset(self.nodes[n] for n in self.canonical), up=frozenset(up),
            down=frozenset({*self.down_nodes, *self.removed.values(), *self.retired}),
            gateways=frozenset(self.gateways), must_hold=must, may_miss=may_miss,
            clock_max=self.clock_max(), acked=dict(self.acked), payer_of=dict(self.payer_of),
            deposits=dict(self.deposits), withdrawals=dict(self.withdrawals), rates=self.rates,
            last_fee=self.last_fee)
