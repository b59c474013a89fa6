"""The fault schedule: expanded from the seed alone, the same seed gives the same schedule."""

from __future__ import annotations

import random

import pytest

from shakedown.errors import ConfigError
from shakedown.scenarios import AddGateway, At, Between, Latency, Stop
from shakedown.scenarios.api import SetRates
from shakedown.scenarios.catalogue import catalogue
from shakedown.scenarios.schedule import plan

RESTARTS = Between(faults=(Stop("node-100"), Stop("node-200"), Stop("node-300")),
                   min_delay_s=2, max_delay_s=6, hold_s=3, cooldown_s=5)


def test_at_steps_come_in_time_order_with_clear_times() -> None:
    steps = plan((At(5, Latency("node-200", ms=100), hold_s=3), At(1, Stop("node-300")),
                  At(2, AddGateway("gateway-1"), hold_s=9)), 20, random.Random(1))
    assert [(s.at_s, s.window, s.clear_s) for s in steps] == [
        (1, "stop@node-300", None), (2, "gateway-add@gateway-1", None),
        (5, "latency@node-200", 8)]


def test_repeated_faults_get_numbered_windows() -> None:
    steps = plan((At(1, Stop("node-300"), hold_s=1), At(5, Stop("node-300"), hold_s=1)), 10,
                 random.Random(0))
    assert [s.window for s in steps] == ["stop@node-300", "stop@node-300#2"]


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    first = plan((RESTARTS,), 120, random.Random(42))
    again = plan((RESTARTS,), 120, random.Random(42))
    other = plan((RESTARTS,), 120, random.Random(43))
    assert [s.to_json() for s in first] == [s.to_json() for s in again]
    assert [s.to_json() for s in first] != [s.to_json() for s in other]
    assert len(first) >= 5


def test_between_respects_delays_cooldown_and_the_end() -> None:
    steps = plan((RESTARTS,), 120, random.Random(7))
    last_clear: dict[str, float] = {}
    previous = 0.0
    for s in steps:
        assert s.at_s - previous >= 2 - 1e-9  # at least min_delay after the previous draw
        assert s.clear_s is not None and s.clear_s == pytest.approx(s.at_s + 3)
        assert s.clear_s <= 120
        if s.what.target in last_clear:
            assert s.at_s >= last_clear[s.what.target] + 5 - 1e-9, "cooldown broken"
        last_clear[s.what.target] = s.clear_s
        previous = s.at_s


@pytest.mark.parametrize("bad", [
    At(-1, Stop("node-100")),
    Between(faults=(), min_delay_s=1, max_delay_s=2, hold_s=1),
    Between(faults=(Stop("node-100"),), min_delay_s=3, max_delay_s=2, hold_s=1),
    At(1, SetRates(message_fe=5)),
])
def test_bad_schedules_are_refused_with_one_line(bad: At | Between) -> None:
    with pytest.raises(ConfigError) as e:
        plan((bad,), 10, random.Random(0))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", list(catalogue()))
def test_every_catalogue_schedule_names_the_windows_its_checks_read(name: str) -> None:
    scenario = catalogue()[name]
    windows = {s.window for s in plan(scenario.faults, scenario.workload_end_s,
                                      random.Random(0))}
    for exp in scenario.expect:
        for window in (getattr(exp, "window", None), *getattr(exp, "windows", ())):
            assert window is None or window in windows, f"{name}: {exp.name} reads " \
                                                         f"{window!r}, scheduled: {sorted(windows)}"
    assert scenario.steps.startswith(f"{name}:"), f"{name}: docstring must state its steps"
    assert "Steps:" in scenario.steps
