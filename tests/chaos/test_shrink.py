"""The shrinker's pure parts: ddmin finds the culprits within its budget, the search starts
from what the failing checkpoint saw, and a run directory names the property to keep."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shakedown.chaos.events import apply_changes, default_table
from shakedown.chaos.generate import generate
from shakedown.chaos.schedule import Schedule
from shakedown.chaos.shrink import Budget, BudgetSpent, Target, ddmin, shrink, target_of
from shakedown.errors import ConfigError


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 30), data=st.data())
def test_ddmin_returns_exactly_the_culprits(n: int, data: st.DataObject) -> None:
    items = list(range(1, n + 1))
    culprits = data.draw(st.sets(st.sampled_from(items), min_size=1, max_size=min(3, n)))
    calls: list[list[int]] = []

    def fails(subset: list[int]) -> bool:
        calls.append(subset)
        return culprits <= set(subset)

    assert sorted(ddmin(items, fails)) == sorted(culprits)
    assert len(calls) == len({tuple(c) for c in calls}), "a candidate was run twice"


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 30), limit=st.integers(0, 6), data=st.data())
def test_ddmin_stops_at_its_budget_with_a_failing_list(n: int, limit: int,
                                                      data: st.DataObject) -> None:
    items = list(range(1, n + 1))
    culprits = data.draw(st.sets(st.sampled_from(items), min_size=1, max_size=2))
    calls = 0

    def fails(subset: list[int]) -> bool:
        nonlocal calls
        if calls >= limit:
            raise BudgetSpent
        calls += 1
        return culprits <= set(subset)

    found = ddmin(items, fails)
    assert culprits <= set(found) and calls <= limit


def test_a_good_first_guess_saves_runs() -> None:
    items = list(range(1, 17))
    counted = {"plain": 0, "guided": 0}

    def fails(key: str) -> Callable[[list[int]], bool]:
        def test(subset: list[int]) -> bool:
            counted[key] += 1
            return {3, 11} <= set(subset)
        return test

    assert ddmin(items, fails("plain")) == [3, 11]
    assert ddmin(items, fails("guided"), firsts=[[3, 5, 11]]) == [3, 11]
    assert counted["guided"] < counted["plain"]


def schedule() -> Schedule:
    table = apply_changes(default_table(), only=["publish", "stop", "start", "reset"])
    return generate(seed=4, table=table, nodes=("node-100", "node-200", "node-300"),
                    gateways=("gateway",), payers=2, events=16, check_every=8)


def test_shrink_keeps_the_property_and_respects_the_run_budget() -> None:
    s = schedule()
    publish = next(e for e in s.events if e.name == "publish")
    fault = next(e for e in s.events if e.name != "publish" and e.n > publish.n)
    target = Target("held", event=16, node=fault.target, events=(publish.n,))
    runs: list[tuple[int, ...]] = []

    def run(candidate: Schedule) -> tuple[bool, str]:
        numbers = {e.n for e in candidate.events}
        runs.append(tuple(sorted(numbers)))
        return {publish.n, fault.n} <= numbers, f"run-{len(runs)}"

    result = shrink(s, target, run, Budget(runs=30, seconds=60))
    assert [e.n for e in result.minimal.events] == sorted({publish.n, fault.n})
    assert result.verified_by and not result.stopped
    tight = shrink(s, target, run, Budget(runs=2, seconds=60))
    assert len(tight.tries) == 2 and "2 runs" in tight.stopped
    assert {publish.n, fault.n} <= {e.n for e in tight.minimal.events}


def test_the_target_is_the_earliest_failing_model_property(tmp_path: Path) -> None:
    checks = [
        {"name": "chaos-usage", "status": "fail", "details": {"first_event": 12, "mismatches": [
            {"node": "node-200", "events": [3, 7]}]}},
        {"name": "chaos-held", "status": "fail", "details": {"first_event": 8, "mismatches": [
            {"node": "node-100", "events": [5]}]}},
        {"name": "history-set", "status": "fail", "details": {}},
    ]
    (tmp_path / "results.json").write_text(json.dumps({"checks": checks, "verdict": "fail"}))
    assert target_of(tmp_path) == Target("held", 8, "node-100", (5,))
    (tmp_path / "results.json").write_text(json.dumps({"checks": checks[2:], "verdict": "fail"}))
    with pytest.raises(ConfigError, match="no model property failed"):
        target_of(tmp_path)
    with pytest.raises(ConfigError, match=r"no results\.json"):
        target_of(tmp_path / "nope")


def test_first_guesses_are_the_named_nodes_faults_since_the_last_agreeing_checkpoint() -> None:
    from shakedown.chaos.shrink import guesses

    s = schedule()
    late = [e for e in s.events if e.n > 8]
    publish = next(e for e in late if e.name == "publish")
    target = Target("held", event=16, node="node-100", events=(publish.n,), since=8)
    focused, segment = guesses(s, target, [e.n for e in s.events])
    nodes = {"node-100", publish.target}
    by_n = {e.n: e for e in s.events}
    assert publish.n in focused and set(focused) <= set(segment)
    assert all(by_n[k].n > 8 or k in {e.n for e in s.opened_before(by_n[k].step + 1)}
               for k in segment)
    for k in focused:
        e = by_n[k]
        assert k == publish.n or (not e.name.startswith("publish")
                                  and set(e.target.split(",")) & nodes)


def test_steps_keep_their_pace_when_their_events_go() -> None:
    s = schedule()
    assert set(s.pace) == {e.step for e in s.events}
    left = s.only([s.events[-1].n])
    assert left.pace == s.pace and Schedule.from_text(left.to_text()).pace == s.pace
