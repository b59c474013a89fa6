"""The event table: changes from --event, --only and TOML apply; bad input is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown.chaos.events import TYPES, apply_changes, default_table, load_toml
from shakedown.errors import ConfigError


def test_the_default_table_holds_every_event_with_its_parameters() -> None:
    table = default_table()
    assert [s.name for s in table.events] == list(TYPES)
    kill = table.get("kill")
    assert (kill.weight, kill.p, kill.param("max_steps")) == (1.0, 0.8, 3)
    assert {"publish", "publish-gateway", "stop", "kill", "start", "pause", "restart",
            "partition", "heal", "latency", "bandwidth", "reset", "timeout", "clock-skew",
            "churn-add", "churn-remove", "gateway-add", "gateway-remove", "db-stop", "reorg",
            "mining-stop", "rates", "deposit", "withdraw"} == set(TYPES)


def test_event_options_change_weight_probability_and_parameters() -> None:
    table = apply_changes(default_table(), events=["kill:weight=2,p=0.5",
                                                   "restart:min_delay_s=1,max_delay_s=4"])
    assert (table.get("kill").weight, table.get("kill").p) == (2.0, 0.5)
    assert table.get("restart").param("max_delay_s") == 4.0
    assert table.get("stop").weight == default_table().get("stop").weight


def test_only_keeps_the_named_events() -> None:
    table = apply_changes(default_table(), only=["publish,partition", "heal"])
    assert {s.name for s in table.active} == {"publish", "partition", "heal"}


def test_toml_changes_apply_and_the_table_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "chaos.toml"
    path.write_text("events_count = 12\n[events.kill]\nweight = 3\np = 1.0\n")
    data = load_toml(path)
    table = apply_changes(default_table(), changes=data["events"], where=str(path))
    assert table.get("kill").weight == 3.0
    assert type(table).from_json(table.to_json()) == table


@pytest.mark.parametrize(("events", "only", "message"), [
    (["lag:weight=1"], [], "--event 'lag:weight=1': unknown event 'lag'; known: publish,"),
    (["kill:weight=-1"], [], "--event kill.weight=-1: must be at least 0"),
    (["kill:p=1.5"], [], "--event kill.p=1.5: must be within 0..1"),
    (["kill:p=often"], [], "--event kill.p='often': expected a number"),
    (["kill:speed=2"], [], "--event kill: unknown parameter 'speed'; known: weight, p, "
                           "max_steps"),
    (["kill"], [], "--event 'kill': write NAME:KEY=VALUE"),
    (["kill:weight"], [], "--event 'kill:weight': 'weight' is not KEY=VALUE"),
    (["restart:min_delay_s=5,max_delay_s=1"], [], "--event restart: min_delay_s=5 is above "
                                                  "max_delay_s=1"),
    (["kill:max_steps=1.5"], [], "--event kill.max_steps='1.5': expected a whole number"),
    (["partition:shapes=ring"], [], "--event partition.shapes='ring': choose from node, "),
    ([], ["publish,nope"], "--only: unknown event 'nope'"),
    (["publish:weight=0"], ["publish"], "the event table has no event left"),
])
def test_bad_table_input_is_one_clear_error(events: list[str], only: list[str],
                                            message: str) -> None:
    with pytest.raises(ConfigError) as got:
        apply_changes(default_table(), events=events, only=only)
    assert str(got.value).startswith(message), str(got.value)
    assert "\n" not in str(got.value)


def test_bad_toml_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("events = [1")
    with pytest.raises(ConfigError, match="not TOML"):
        load_toml(bad)
    bad.write_text("colour = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="cannot read it"):
        load_toml(tmp_path / "missing.toml")
