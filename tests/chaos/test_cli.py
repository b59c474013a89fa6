"""``shakedown chaos`` refuses bad input with one line and exit 2, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deploy.testnets import run_cli


@pytest.mark.parametrize(("args", "message"), [
    (["--event", "lag:weight=1"], "shakedown: --event 'lag:weight=1': unknown event 'lag'"),
    (["--event", "kill:weight=-2"], "shakedown: --event kill.weight=-2: must be at least 0"),
    (["--event", "kill:p=1.5"], "shakedown: --event kill.p=1.5: must be within 0..1"),
    (["--only", "publish,nap"], "shakedown: --only: unknown event 'nap'"),
    (["--events", "0"], "shakedown: --events 0: must be above 0"),
    (["--check-every", "0"], "shakedown: --check-every 0: must be above 0"),
    (["--check-every", "-3"], "shakedown: --check-every -3: must be above 0"),
    (["--duration", "0"], "shakedown: --duration 0: must be above 0"),
    (["--replay", "/tmp", "--seed", "3"], "shakedown: --seed: a replayed or shrunk schedule"),
    (["--replay", "a", "--shrink", "b"], "shakedown: give --replay or --shrink, not both"),
    (["--node-env", "x:A=1"], "shakedown: --node-env 'x:A=1': write"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str,
                                          tmp_path: Path) -> None:
    out = run_cli("chaos", "--runs-dir", str(tmp_path), *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not out.stdout
    assert not list(tmp_path.iterdir()), "nothing may be half-done"


def test_a_replay_or_shrink_dir_without_a_schedule_is_refused(tmp_path: Path) -> None:
    for flag in ("--replay", "--shrink"):
        out = run_cli("chaos", flag, str(tmp_path), "--runs-dir", str(tmp_path / "runs"))
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
        assert "no schedule.json here" in out.stderr, out.stderr


def test_shrinking_a_run_that_failed_no_model_property_is_refused(tmp_path: Path) -> None:
    from shakedown.chaos.events import default_table
    from shakedown.chaos.generate import generate

    schedule = generate(seed=1, table=default_table(), nodes=("node-100",), gateways=(),
                        payers=1, events=3, check_every=2)
    (tmp_path / "schedule.json").write_text(schedule.to_text())
    (tmp_path / "results.json").write_text(json.dumps({"verdict": "pass", "checks": []}))
    out = run_cli("chaos", "--shrink", str(tmp_path), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2 and "no model property failed (verdict pass)" in out.stderr


def test_a_bad_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text("[events.kill]\np = 3\n")
    out = run_cli("chaos", "--config", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2 and f"shakedown: {config} kill.p=3: must be within 0..1" \
        in out.stderr, out.stderr


def test_list_events_shows_the_table() -> None:
    out = run_cli("chaos", "--list-events")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines() if not line.startswith(" ")]
    assert names[:3] == ["publish", "publish-gateway", "stop"] and "withdraw" in names
