"""``shakedown list`` and the ways ``shakedown run`` refuses bad input with one line, exit 2."""

from __future__ import annotations

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
CHAOS_SCENARIOS = {"random-chaos"}


def test_list_names_every_scenario_with_its_description() -> None:
    out = run_cli("list")
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == list(ORDER)
    assert set(listed) == ISSUE_CATALOGUE | PAYER_SCENARIOS | CHAOS_SCENARIOS == set(catalogue())


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
