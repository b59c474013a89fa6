"""Schedules are pure: the same seed writes the same bytes, and every schedule only holds events
that can run where they are (checked here by replaying the schedule against its own rules)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shakedown.chaos.events import TYPES, apply_changes, default_table
from shakedown.chaos.generate import generate
from shakedown.chaos.schedule import Schedule
from shakedown.errors import ConfigError

NODES = ("node-100", "node-200", "node-300")
CHAIN = {"churn-add", "churn-remove", "reorg", "mining-stop", "rates", "deposit", "withdraw"}


def make(seed: int, events: int = 30, table=None, nodes=NODES, gateways=("gateway",),
         check_every: int = 8) -> Schedule:
    return generate(seed=seed, table=table or default_table(), nodes=nodes, gateways=gateways,
                    payers=3, events=events, check_every=check_every)


def test_one_seed_writes_byte_identical_schedules_and_seeds_differ() -> None:
    assert make(7).to_text() == make(7).to_text()
    texts = {make(seed).to_text() for seed in range(1, 6)}
    assert len(texts) == 5
    assert make(7).to_text() != make(7, table=apply_changes(
        default_table(), events=["kill:weight=5"])).to_text()


def test_the_schedule_file_round_trips() -> None:
    schedule = make(11)
    again = Schedule.from_text(schedule.to_text())
    assert again == schedule and again.to_text() == schedule.to_text()


def test_a_file_that_is_not_a_schedule_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a chaos schedule"):
        Schedule.from_text('{"schema": "other"}', "x.json")
    with pytest.raises(ConfigError, match="unreadable chaos schedule"):
        Schedule.from_text("{", "x.json")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"events": 0}, "--events 0: must be at least 1"),
    ({"check_every": 0}, "--check-every 0: must be at least 1"),
    ({"table": apply_changes(default_table(), only=["start"])}, "the event table yields no "
                                                                "event that can run"),
])
def test_sizes_out_of_range_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(1, **kwargs)


def test_steps_have_dmsgs_shape_and_checkpoints_follow_the_count() -> None:
    schedule = make(3, events=40, check_every=10)
    assert [e.n for e in schedule.events] == list(range(1, 41))
    per_step = Counter(e.step for e in schedule.events)
    assert max(per_step.values()) <= 3
    marks = schedule.checkpoint_steps()
    assert list(marks.values()) == sorted(marks.values())
    assert len(marks) == 4 and max(marks.values()) == 40


def test_restart_cooldown_keeps_a_node_resting() -> None:
    table = apply_changes(default_table(), only=["restart", "publish"],
                          events=["restart:weight=20,p=1,cooldown_s=1000"])
    restarted = [e.target for e in make(5, events=40, table=table).events if e.name == "restart"]
    assert len(restarted) == len(set(restarted)) >= 1


def test_without_drops_the_closers_of_dropped_openers() -> None:
    table = apply_changes(default_table(), only=["stop", "start", "publish"],
                          events=["stop:weight=5,p=1", "start:weight=5"])
    schedule = make(2, events=20, table=table)
    start = next(e for e in schedule.events if e.name == "start")
    opener = next(e for e in schedule.events if e.window == start.closes[0])
    left = schedule.without([opener.n])
    assert start.n not in {e.n for e in left.events}
    assert [e.step for e in left.events] == [e.step for e in schedule.events
                                             if e.n not in (opener.n, start.n)]


def replay_rules(schedule: Schedule) -> None:
    """Walk the schedule with the rules it promises, independently of the generator."""
    up = set(schedule.nodes)
    canonical = set(schedule.nodes)
    down: dict[str, str] = {}
    frozen: set[str] = set()
    opened: dict[str, tuple[str, str]] = {}
    gateways = set(schedule.gateways)
    windows: set[str] = set()
    for step, events in schedule.steps():
        for e in schedule.expiring(step):
            if e.window in opened:
                _close(e.window, opened, up, down, frozen, canonical)
        targets = [e.target for e in events if not e.name.startswith("publish")
                   and e.target not in ("chain", "db", "network")]
        assert len(targets) == len(set(targets)), f"step {step}: a target twice: {targets}"
        assert sum(e.name in CHAIN for e in events) <= 1, f"step {step}: two chain events"
        for e in events:
            assert e.name in TYPES and e.step == step
            if e.window:
                assert e.window not in windows, f"window {e.window} reused"
                windows.add(e.window)
            if e.name == "publish":
                assert e.target in up and 0 <= e.params["payer"] < schedule.payers
            elif e.name == "publish-gateway":
                assert e.target in gateways
            elif e.name in ("stop", "kill", "pause", "restart", "clock-skew", "churn-remove"):
                assert e.target in up and e.target not in frozen, f"{e.describe()} on {up}"
                assert len(up) > 1, f"{e.describe()} would leave no node up"
                if e.name in ("stop", "kill"):
                    up.discard(e.target)
                    down[e.target] = e.window
                    opened[e.window] = (e.name, e.target)
                elif e.name == "churn-remove":
                    up.discard(e.target)
                    canonical.discard(e.target)
                    opened[e.window] = (e.name, e.target)
            elif e.name == "start":
                assert down.get(e.target) == e.closes[0]
                _close(e.closes[0], opened, up, down, frozen, canonical)
            elif e.name == "partition":
                members = {*e.target.split(","), *e.params.get("others", "").split(",")} - {""}
                assert members <= up and not frozen
                frozen |= members
                opened[e.window] = ("partition", e.target)
            elif e.name == "heal":
                assert e.closes and all(opened[w][0] == "partition" for w in e.closes)
                for w in e.closes:
                    _close(w, opened, up, down, frozen, canonical)
            elif e.name == "churn-add":
                assert e.target not in canonical
                canonical.add(e.target)
                up.add(e.target)
            elif e.name == "gateway-add":
                gateways.add(e.target)
            elif e.name == "gateway-remove":
                gateways.remove(e.target)
            if e.until_step is not None:
                assert e.until_step > step


def _close(window: str, opened: dict, up: set, down: dict, frozen: set, canonical: set) -> None:
    name, target = opened.pop(window)
    if name in ("stop", "kill"):
        down.pop(target)
        up.add(target)
    elif name == "partition":
        frozen.clear()
    elif name == "churn-remove":
        up.add(target)
        canonical.add(target)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31), events=st.integers(1, 60),
       weights=st.lists(st.floats(0.0, 5.0), min_size=len(TYPES), max_size=len(TYPES)),
       gateways=st.integers(0, 2))
def test_every_generated_schedule_keeps_its_rules(seed: int, events: int, weights: list[float],
                                                  gateways: int) -> None:
    changes = {name: {"weight": w} for name, w in zip(TYPES, weights, strict=True)}
    changes["publish"] = {"weight": 1.0}
    table = apply_changes(default_table(), changes=changes)
    schedule = make(seed, events=events, table=table,
                    gateways=tuple(["gateway", "gateway-x"][:gateways]))
    assert 1 <= len(schedule.events) <= events
    replay_rules(schedule)
    assert Schedule.from_text(schedule.to_text()) == schedule
