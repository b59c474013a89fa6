"""``shakedown list`` and the ways ``shakedown run`` refuses bad input with one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown.errors import ConfigError
from shakedown.scenarios.catalogue import ORDER, catalogue, get
from shakedown.scenarios.cli import parse_images, parse_node_env
from tests.deploy.testnets import run_cli

ISSUE_CATALOGUE = {"smoke", "sync-verification", "chaos-node-down", "chaos-latency",
                   "chaos-bandwidth-throttle", "chaos-connection-reset",
                   "chaos-network-partition", "chaos-compound-fault", "gateway-scale",
                   "partition-recovery", "thundering-herd", "load-progression"}
PAYER_SCENARIOS = {"payer-lifecycle", "multi-payer", "settlement-verification",
                   "rate-registry-change", "chaos-attestation-fault", "stuck-state-detection",
                   "sustained-load"}
ADVERSARIAL = {"invalid-envelope-fuzz", "api-flood", "slow-subscriber", "disconnect",
               "byzantine-peer", "lying-reporter"}
CHAOS_SCENARIOS = {"random-chaos"}
FAILURE_SCENARIOS = {"churn", "propagation", "clock-skew", "latency-tiers", "burst-no-sync",
                     "server-restart", "aggressive-chaos"}  # issue 14, part B


def test_list_names_every_scenario_with_its_description() -> None:
    out = run_cli("list")
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == list(ORDER)
    every = ISSUE_CATALOGUE | PAYER_SCENARIOS | ADVERSARIAL | CHAOS_SCENARIOS | FAILURE_SCENARIOS
    assert set(listed) == every == set(catalogue())


def test_list_verbose_shows_the_steps() -> None:
    out = run_cli("list", "-v")
    assert "Steps:" in out.stdout and "black-hole node-300" in out.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope"], "shakedown: unknown scenario 'nope'; known: smoke, sync-verification,"),
    (["run"], "shakedown: name a scenario or use --all; known: smoke,"),
    (["run", "smoke", "--all"], "shakedown: give scenario names or --all, not both"),
    (["run", "smoke", "--image", "nodes=x"], "shakedown: --image 'nodes=x': write ROLE=REF"),
    (["run", "smoke", "--node-env", "x:A=1"], "shakedown: --node-env 'x:A=1': write"),
])
def test_bad_input_gives_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2
    assert out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not out.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["smoke", "--node-env", "999:X=1"],
     "shakedown: --node-env 999:...: scenario smoke has no node 999; its nodes are 100, 200, 300"),
    (["--all", "--node-env", "400:X=1"],
     "shakedown: --node-env 400:...: scenario smoke has no node 400; its nodes are"),
    (["smoke", "--node-env", "0:X=1"], "shakedown: --node-env '0:X=1': there is no node 0"),
    (["smoke", "--node-env", "300:bad-key=1"],
     "shakedown: --node-env '300:bad-key=1': 'bad-key' is not an environment variable name"),
    (["smoke", "--node-env", "node-300:X=1"], "shakedown: --node-env 'node-300:X=1': write"),
    (["smoke", "--image", "node="], "shakedown: --image 'node=': write ROLE=REF"),
    (["smoke", "--image", "node=shakedown/none:nope"],
     "shakedown: --image node=shakedown/none:nope: not on the Docker engine"),
    (["smoke", "--seed", "-1"], "shakedown: --seed -1: use a number >= 0"),
])
def test_overrides_that_do_not_fit_are_refused_before_anything_runs(
        tmp_path: Path, args: list[str], message: str) -> None:
    """An override naming what the scenario does not have: one line, exit 2, no run started."""
    runs = tmp_path / "runs"
    out = run_cli("run", *args, "--runs-dir", str(runs))
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not out.stdout
    assert not runs.exists() or not any(runs.iterdir()), "a run started"


def test_runs_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    out = run_cli("run", "smoke", "--runs-dir", str(tmp_path / "f"))
    assert out.returncode == 2 and out.stderr.startswith("shakedown: --runs-dir "), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_node_env_and_image_overrides_parse() -> None:
    assert parse_node_env(["300:REFNODE_SYNC_ENABLED=0", "REFNODE_LOG_LEVEL=DEBUG"]) == {
        300: {"REFNODE_SYNC_ENABLED": "0"}, 0: {"REFNODE_LOG_LEVEL": "DEBUG"}}
    assert parse_images(["node=shakedown/node:abc"]) == {"node": "shakedown/node:abc"}
    with pytest.raises(ConfigError):
        parse_node_env(["NOEQUALS"])


def test_get_names_the_known_scenarios() -> None:
    assert get("smoke").name == "smoke"
    with pytest.raises(ConfigError, match="known: smoke"):
        get("smok")
