"""The api-flood judgement on hand-made histories: what passes, and each way it fails."""

from __future__ import annotations

from typing import Any

from shakedown.scenarios.flood import FloodWithstood, p99
from tests.scenarios.histories import Events

HEALTHY = {"query": {"OK": 200, "RESOURCE_EXHAUSTED": 1800},
           "bad-query": {"INVALID_ARGUMENT": 200, "RESOURCE_EXHAUSTED": 1800},
           "bad-publish": {"INVALID_ARGUMENT": 200, "RESOURCE_EXHAUSTED": 1800}}


def flood_run(codes: dict[str, dict[str, int]], latency_ms: float = 20.0,
              counted: int = 5400, probe_code: str = "OK") -> Any:
    ev = Events()
    calls = sum(sum(c.values()) for c in codes.values())
    ev.add(13.0, "info", "flood", label="flood", phase="done", connection=0, calls=calls,
           elapsed_s=10.0, codes=codes)
    ev.add(13.5, "info", "flood", label="flood", phase="status", target="node-100",
           calls={"QueryEnvelopes RESOURCE_EXHAUSTED": counted, "QueryEnvelopes OK": 200})
    samples = [[1.0 + 0.1 * k, latency_ms, probe_code] for k in range(150)]
    ev.add(16.0, "info", "latency", label="probe", target="node-100", samples=samples)
    return ev.view()


def test_a_limited_node_that_serves_its_probe_withstands_the_flood() -> None:
    check = FloodWithstood(p99_ms=500).check(flood_run(HEALTHY))
    assert check.status == "pass", check.message
    assert check.details["calls_per_s"] == 600 and check.details["probe_calls"] == 101


def test_a_node_that_refuses_nothing_over_its_rate_fails() -> None:
    unlimited = {"query": {"OK": 6000}, "bad-query": {"INVALID_ARGUMENT": 6000},
                 "bad-publish": {"INVALID_ARGUMENT": 6000}}
    check = FloodWithstood().check(flood_run(unlimited, counted=0))
    assert check.status == "fail"
    assert "refused none of 18000 flood calls over its rate" in check.message, check.message


def test_malformed_calls_taken_or_a_slow_probe_fail() -> None:
    taken = {**HEALTHY, "bad-publish": {"UNKNOWN": 10, "RESOURCE_EXHAUSTED": 1990}}
    check = FloodWithstood().check(flood_run(taken))
    assert "malformed calls answered {'bad-publish': {'UNKNOWN': 10}}" in check.message
    check = FloodWithstood(p99_ms=500).check(flood_run(HEALTHY, latency_ms=900))
    assert "p99 latency was 900 ms" in check.message, check.message
    check = FloodWithstood().check(flood_run(HEALTHY, probe_code="DEADLINE_EXCEEDED"))
    assert "the probe got {'DEADLINE_EXCEEDED': 101}" in check.message, check.message


def test_refusals_the_node_did_not_count_fail() -> None:
    check = FloodWithstood().check(flood_run(HEALTHY, counted=10))
    assert check.status == "fail" and "counted 10 refusals" in check.message, check.message


def test_p99_is_the_value_under_which_99_percent_lie() -> None:
    assert p99([float(v) for v in range(1, 101)]) == 100.0
    assert p99([float(v) for v in range(1, 1001)]) == 991.0
    assert p99([]) == 0.0
