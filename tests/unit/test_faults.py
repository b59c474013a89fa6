"""Pure logic of faults: parameters, durations, ledger states and merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown.errors import ConfigError
from shakedown.faults.cli import parse_duration, parse_params
from shakedown.faults.kinds import KINDS
from shakedown.faults.ledger import Ledger, merged


def test_parameters_are_typed_defaulted_and_bounded() -> None:
    values = KINDS["latency"].parse({"latency_ms": "250"})
    assert values == {"latency_ms": 250, "jitter_ms": 0, "stream": "downstream", "toxicity": 1.0}
    with pytest.raises(ConfigError, match="missing parameter latency_ms"):
        KINDS["latency"].parse({})
    with pytest.raises(ConfigError, match="unknown parameter 'delay'"):
        KINDS["latency"].parse({"latency_ms": 1, "delay": 2})
    with pytest.raises(ConfigError, match=r"within 0\.0-100\.0"):
        KINDS["loss"].parse({"percent": 120})
    with pytest.raises(ConfigError, match="choose one of"):
        KINDS["latency"].parse({"latency_ms": 1, "stream": "sideways"})


@pytest.mark.parametrize(("raw", "seconds"), [("90", 90), ("90s", 90), ("5m", 300),
                                              ("1h", 3600), ("500ms", 0.5), ("1.5s", 1.5)])
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == seconds


def test_bad_duration_and_params_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="60s, 5m or 1h"):
        parse_duration("soon")
    with pytest.raises(ConfigError, match="name=value"):
        parse_params(["latency_ms"])


def test_a_parameter_given_twice_is_refused_not_last_wins() -> None:
    with pytest.raises(ConfigError, match=r"latency_ms given twice .* give it once"):
        parse_params(["latency_ms=10", "latency_ms=20"])
    assert parse_params(["latency_ms=10", "jitter_ms=20"]) == {"latency_ms": "10",
                                                                 "jitter_ms": "20"}


def test_a_whole_number_parameter_refuses_fractions_and_booleans() -> None:
    for raw in (3.5, True):
        with pytest.raises(ConfigError, match="expected a int"):
            KINDS["latency"].parse({"latency_ms": raw})
    assert KINDS["latency"].parse({"latency_ms": 3.0})["latency_ms"] == 3


def test_a_kind_or_parameter_of_one_runtime_says_so_in_one_line() -> None:
    with pytest.raises(ConfigError, match="churn-add acts on Docker testnets: it needs a Docker "
                                          "host; the target is on an SSH host"):
        KINDS["churn-add"].supported("ssh")
    with pytest.raises(ConfigError, match="peers= needs an SSH host; the target is on a Docker"):
        KINDS["partition"].parse({"peers": "10.0.0.1"}, "docker")
    assert "mode" not in KINDS["partition"].parse({"peers": "10.0.0.1"}, "ssh")


def test_ledger_records_intent_before_state_changes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.json")
    entry = ledger.intend(kind="pause", target="node-100", params={},
                          undo=[{"op": "container", "name": "x", "action": "unpause"}])
    assert Ledger(ledger.path).get(entry.id) == entry and entry.state == "intended"
    ledger.update(entry.id, state="active")
    assert [e.state for e in ledger.entries()] == ["active"]
    assert ledger.update("f-missing", state="cleared") is None


def test_merge_prefers_the_host_when_it_healed(tmp_path: Path) -> None:
    controller, host = Ledger(tmp_path / "c.json"), Ledger(tmp_path / "h.json")
    entry = host.intend(kind="pause", target="node-100", params={}, undo=[])
    controller.put(entry)
    host.update(entry.id, state="cleared")  # the TTL process healed it on the host
    assert [e.state for e in merged(controller, host)] == ["cleared"]
    other = controller.intend(kind="stop", target="node-200", params={}, undo=[])
    assert [e.id for e in merged(controller, host)] == [entry.id, other.id]
