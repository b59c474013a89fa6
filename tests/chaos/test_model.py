"""The model on hand-made event sequences (what may be missing while a fault holds, what must
be present once it healed), and its invariants on random sequences (Hypothesis)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shakedown.chaos.model import Ack, Model, Unsure

NODES = {"node-100": 100, "node-200": 200, "node-300": 300}
PAYER = "0xaaaa"


def ack(originator: int, seq: int, event: int = 1) -> Ack:
    return Ack(originator, seq, f"d{originator}:{seq}", f"p{originator}:{seq}", PAYER, event)


def fresh() -> Model:
    return Model(dict(NODES), payers={"payer-0": PAYER})


def test_a_blackholed_node_may_miss_what_others_acked_until_the_heal() -> None:
    m = fresh()
    m.partitioned(1, "partition@node-300", "node", ["node-300"])
    m.published(2, acks=[ack(100, 1, 2), ack(300, 1, 2)])
    p = m.predict()
    assert set(p.must_hold["node-200"]) == {(100, 1)}       # 300's is cut off
    assert set(p.must_hold["node-300"]) == {(300, 1)}       # only its own
    assert p.may_miss["node-300"] == 1 and p.may_miss["node-200"] == 1
    m.cleared(3, "partition@node-300")
    p = m.predict()
    assert set(p.must_hold["node-300"]) == set(p.must_hold["node-200"]) == {(100, 1), (300, 1)}


def test_a_stopped_node_keeps_what_it_acknowledged_and_others_wait_for_it() -> None:
    m = fresh()
    m.published(1, acks=[ack(200, 1)])
    m.down(2, "stop@node-200", "node-200")
    m.published(3, acks=[ack(100, 1, 3)])
    p = m.predict()
    assert set(p.must_hold["node-200"]) == {(200, 1)}       # durable while down
    assert set(p.must_hold["node-100"]) == {(100, 1)}       # node-200's may be stuck there
    assert p.down == {"node-200"} and p.up == {"node-100", "node-300"}
    m.cleared(4, "stop@node-200")
    assert set(m.predict().must_hold["node-300"]) == {(100, 1), (200, 1)}


def test_an_asymmetric_partition_cuts_one_direction_only() -> None:
    m = fresh()
    m.partitioned(1, "partition@node-100", "asymmetric", ["node-100"], ["node-200", "node-300"])
    m.published(2, acks=[ack(100, 1, 2), ack(200, 1, 2)])
    p = m.predict()
    assert set(p.must_hold["node-100"]) == {(100, 1)}            # cannot read node-200
    assert set(p.must_hold["node-200"]) == {(100, 1), (200, 1)}  # still reads node-100


def test_two_groups_cut_both_ways_and_a_group_keeps_replicating_inside() -> None:
    m = fresh()
    m.partitioned(1, "partition@node-100,node-200", "groups", ["node-100", "node-200"],
                  ["node-300"])
    m.published(2, acks=[ack(100, 1, 2), ack(300, 1, 2)])
    p = m.predict()
    assert set(p.must_hold["node-200"]) == {(100, 1)}
    assert set(p.must_hold["node-300"]) == {(300, 1)}


def test_churn_changes_the_canonical_set_and_the_final_heal_restores_it() -> None:
    m = fresh()
    m.churn_added(1, "churn-add@node-400", "node-400", 400)
    m.churn_removed(2, "churn-remove@node-300", "node-300")
    m.published(3, acks=[ack(400, 1, 3), ack(300, 1, 3)])
    p = m.predict()
    assert p.canonical == {100, 200, 400}
    assert set(p.must_hold["node-100"]) == {(400, 1)}
    assert p.down == {"node-300"}
    m.final_heal()
    p = m.predict()
    assert p.final and p.canonical == {100, 200, 300} and p.down == {"node-400"}
    for node in ("node-100", "node-200", "node-300"):
        assert set(p.must_hold[node]) == {(400, 1), (300, 1)}


def test_clocks_are_bounded_by_acks_and_unsure_publishes() -> None:
    m = fresh()
    m.published(1, acks=[ack(100, 1), ack(100, 2), ack(100, 3)],
                unsure=[Unsure("u1", PAYER, 100, 1), Unsure("u2", PAYER, 100, 1),
                        Unsure("u3", "0xbbbb", 0, 1)])
    p = m.predict()
    assert p.clock_max[100] == 6 and p.clock_max[200] == 1 and p.clock_max[300] == 1
    assert p.payer_of["u3"] == "0xbbbb" and p.payer_of["p100:1"] == PAYER


def test_money_and_rates_are_ranges_when_an_operation_is_unsure() -> None:
    m = fresh()
    m.deposited(1, PAYER, 100, sure=True)
    m.deposited(2, PAYER, 50, sure=False)
    m.withdrawal_requested(3, PAYER, 20, sure=True)
    m.rates_set(4, 700, sure=True)
    p = m.predict()
    assert (p.deposits[PAYER].low, p.deposits[PAYER].high) == (100, 150)
    assert 20 in p.withdrawals[PAYER] and p.last_fee == 700
    m.rates_set(5, 900, sure=False)
    assert m.predict().last_fee is None and 1 in m.predict().rates and 2 in m.predict().rates


class ModelMachine(RuleBasedStateMachine):
    """Random fault and publish sequences; the prediction keeps its invariants throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.m = fresh()
        self.seq = {100: 0, 200: 0, 300: 0}
        self.event = 0
        self.windows: list[str] = []

    def _next(self) -> int:
        self.event += 1
        return self.event

    @rule(node=st.sampled_from(sorted(NODES)), n=st.integers(1, 3))
    def publish(self, node: str, n: int) -> None:
        if node not in self.m.up():
            return
        o = NODES[node]
        event = self._next()
        acks = []
        for _ in range(n):
            self.seq[o] += 1
            acks.append(ack(o, self.seq[o], event))
        self.m.published(event, acks=acks)

    @rule(node=st.sampled_from(sorted(NODES)))
    def stop(self, node: str) -> None:
        if node in self.m.up() and len(self.m.up()) > 1:
            w = f"stop@{node}#{self.event}"
            self.m.down(self._next(), w, node)
            self.windows.append(w)

    @rule(shape=st.sampled_from(["node", "groups", "asymmetric"]), k=st.integers(1, 2))
    def partition(self, shape: str, k: int) -> None:
        names = sorted(self.m.up())
        if len(names) < 2 or self.m.cuts:
            return
        w = f"partition#{self.event}"
        group = names[:1] if shape == "node" else names[:min(k, len(names) - 1)]
        self.m.partitioned(self._next(), w, shape, group,
                           [] if shape == "node" else [n for n in names if n not in group])
        self.windows.append(w)

    @precondition(lambda self: bool(self.windows))
    @rule(data=st.data())
    def clear_one(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self.windows))
        before = self.m.predict()
        self.m.cleared(self._next(), w)
        self.windows.remove(w)
        after = self.m.predict()
        for node, keys in before.must_hold.items():   # healing never lowers what must be held
            assert set(keys) <= set(after.must_hold[node]), (w, node)

    @invariant()
    def predictions_stay_within_what_was_acked(self) -> None:
        p = self.m.predict()
        for node, keys in p.must_hold.items():
            assert set(keys) <= set(p.acked)
            assert len(keys) + p.may_miss[node] == len(p.acked)
            own = {k for k in p.acked if k[0] == NODES[node]}
            assert own <= set(keys), f"{node} must always hold what it acknowledged"
            if node not in p.up:
                assert set(keys) == own
        for o, top in p.clock_max.items():
            assert top == self.seq.get(o, 0)

    def teardown(self) -> None:
        self.m.final_heal()
        p = self.m.predict()
        assert p.up == set(NODES) and not p.down
        for keys in p.must_hold.values():
            assert set(keys) == set(p.acked)


ModelMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                          deadline=None)
test_model_invariants = ModelMachine.TestCase
