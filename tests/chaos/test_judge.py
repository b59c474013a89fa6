"""The judge: a snapshot that agrees with the prediction passes; each kind of disagreement is
named with its node, prediction and observation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shakedown.chaos.judge import judge, settled
from shakedown.chaos.model import Ack, Model, Range, Unsure
from shakedown.chaos.observed import ChainView, NodeView, Snapshot, Stored, ranges

P0, P1 = "0xaaaa", "0xbbbb"
NODES = {"node-100": 100, "node-200": 200}
FEE = 10


def model() -> Model:
    m = Model(dict(NODES), payers={"payer-0": P0, "payer-1": P1}, rates=Range(1, 1))
    m.published(1, acks=[Ack(100, 1, "d1", "p1", P0, 1), Ack(100, 2, "d2", "p2", P1, 1),
                         Ack(200, 1, "d3", "p3", P0, 2)])
    m.deposited(3, P0, 1000, sure=True)
    return m


STORE = {(100, 1): Stored("d1", "p1", P0, FEE), (100, 2): Stored("d2", "p2", P1, FEE),
         (200, 1): Stored("d3", "p3", P0, FEE)}
USAGE = {(P0, 100): (1, FEE), (P1, 100): (1, FEE), (P0, 200): (1, FEE)}


def node(name: str, store: dict | None = None, **changes: object) -> NodeView:
    store = dict(STORE if store is None else store)
    clock: dict[int, int] = {}
    for o, s in store:
        clock[o] = max(clock.get(o, 0), s)
    view = NodeView(name, envelopes=store, clock=clock, usage=dict(USAGE), serving=True)
    return replace(view, **changes)  # type: ignore[arg-type]


def snapshot(**nodes: NodeView) -> Snapshot:
    views = {"node-100": node("node-100"), "node-200": node("node-200"),
             **{k.replace("_", "-"): v for k, v in nodes.items()}}
    chain = ChainView(block=9, canonical=frozenset({100, 200}), balances={P0: 1000 - FEE},
                      settled={P0: FEE}, rates=1, last_fee=None)
    return Snapshot(1.0, views, {}, chain)


def props(found: list) -> list[str]:
    return [m.property for m in found]


def test_a_snapshot_that_agrees_passes() -> None:
    assert judge(model().predict(), snapshot()) == []


def test_a_missing_envelope_is_named_with_its_event_and_the_clock() -> None:
    store = {k: v for k, v in STORE.items() if k != (100, 2)}
    found = judge(model().predict(), snapshot(node_200=node("node-200", store,
                                                             usage={(P0, 100): (1, FEE),
                                                                    (P0, 200): (1, FEE)})))
    assert props(found) == ["held"]
    held = next(m for m in found if m.property == "held")
    assert held.node == "node-200" and "100:2" in held.observed and held.events == (1,)
    assert "after event 7: held on node-200: predicted all 3" in held.message(7)


@pytest.mark.parametrize(("store", "usage", "expected"), [
    ({**STORE, (100, 2): Stored("other", "p2", P1, FEE)}, USAGE, "intact"),
    ({k: v for k, v in STORE.items() if k != (100, 1)}, {**USAGE, (P0, 100): (0, 0)},
     "contiguous"),
    ({**STORE, (100, 3): Stored("d9", "nobody", P0, FEE)}, {**USAGE, (P0, 100): (2, 2 * FEE)},
     "unique"),
    ({**STORE, (100, 3): Stored("d9", "p1", P0, FEE)}, {**USAGE, (P0, 100): (2, 2 * FEE)},
     "unique"),
    ({**STORE, (100, 2): Stored("d2", "p2", P0, FEE)}, {**USAGE, (P0, 100): (2, 2 * FEE),
                                                        (P1, 100): (0, 0)}, "payer"),
    (STORE, {**USAGE, (P0, 200): (0, 0)}, "usage"),     # a forgotten message
])
def test_each_safety_property_names_what_broke(store: dict, usage: dict, expected: str) -> None:
    found = judge(model().predict(), snapshot(node_100=node("node-100", store, usage=usage)))
    assert expected in props(found), found
    assert all(m.node == "node-100" for m in found if m.property == expected)
    assert settled(found) == ("held" not in props(found))  # only liveness is waited for


def test_clocks_must_match_the_store_and_stay_below_what_was_acked() -> None:
    bad = node("node-100", clock={100: 5, 200: 1})
    found = judge(model().predict(), snapshot(node_100=bad))
    assert "clock" in props(found)
    m = model()
    m.published(4, unsure=[Unsure("p9", P0, 100, 4)])
    ok = {**STORE, (100, 3): Stored("d9", "p9", P0, FEE)}
    found = judge(m.predict(), snapshot(node_100=node("node-100", ok,
                                                       usage={**USAGE, (P0, 100): (2, 2 * FEE)})))
    assert "clock" not in props(found) and "unique" not in props(found)


def test_envelopes_that_vanish_between_snapshots_break_monotonic() -> None:
    before = {"node-100": node("node-100")}
    after = node("node-100", {k: v for k, v in STORE.items() if k != (200, 1)},
                 usage={**USAGE, (P0, 200): (0, 0)})
    assert "monotonic" in props(judge(model().predict(), snapshot(node_100=after), before))


def test_liveness_waits_and_serving_follows_the_fault_state() -> None:
    m = model()
    m.down(5, "stop@node-200", "node-200")
    found = judge(m.predict(), snapshot(node_200=node("node-200", serving=True)))
    assert props(found) == ["serving"] and "down" in found[0].predicted
    found = judge(model().predict(), snapshot(node_200=node("node-200", serving=False)))
    assert props(found) == ["serving"] and not settled(found)


def test_the_chain_must_show_the_canonical_set_money_and_rates() -> None:
    snap = snapshot()
    wrong_set = replace(snap, chain=replace(snap.chain, canonical=frozenset({100})))
    assert props(judge(model().predict(), wrong_set)) == ["canonical"]
    overcharged = replace(snap, chain=replace(snap.chain, balances={P0: 1000 - 99 * FEE},
                                              settled={P0: 99 * FEE}))
    found = judge(model().predict(), overcharged)
    assert props(found) == ["balance"] and "charged at most 20" in found[0].predicted
    lost_deposit = replace(snap, chain=replace(snap.chain, balances={P0: 500}))
    assert props(judge(model().predict(), lost_deposit)) == ["balance"]
    m = model()
    m.rates_set(6, 4000, sure=True)
    assert props(judge(m.predict(), snap)) == ["rates"]


def test_ranges_read_like_a_person_writes_them() -> None:
    assert ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert ranges([4]) == "4"
