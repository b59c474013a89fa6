"""Chaos runs for real, each on a fresh testnet: a healthy one passes with its artifacts, and a
planted bug is found, named by the property it breaks, shrunk to a few events and found again
on replay.

In every CI run: the dropped-envelope bug found at the first checkpoint of an 8-event run.
With ``-m long``: the same bug found, shrunk and replayed. In the catalogue lane (``pytest -m
catalogue tests/chaos``): the forgotten-usage bug the same way, and healthy CI-sized runs on
four seeds (one also checks the run's artifacts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from shakedown.chaos.generate import generate
from shakedown.chaos.schedule import Schedule
from shakedown.scenarios.catalogue import get
from shakedown.scenarios.runner import RunOptions, run_scenario
from tests.deploy.testnets import REPO, leftovers, reap

DROP = "REFNODE_BUG_DROP_AFTER_RECONNECT_S=1"
FORGET = "REFNODE_BUG_FORGET_USAGE_ON_RESTART=1"


@pytest.fixture
def runs(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """A runs directory; every testnet a run under it made is reaped at the end."""
    yield tmp_path
    for results in tmp_path.rglob("results.json"):
        name = json.loads(results.read_text()).get("testnet")
        if name:
            assert not leftovers(docker_client, name), f"{results.parent} left {name} behind"
            reap(docker_client, name)


def chaos(*args: str, timeout_s: float = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shakedown.cli", "chaos", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s)


def failed_checks(run_dir: Path) -> dict[str, str]:
    checks = json.loads((run_dir / "results.json").read_text())["checks"]
    return {c["name"]: c["message"] for c in checks if c["status"] == "fail"}


def only_dir(parent: Path, pattern: str) -> Path:
    (found,) = [p for p in parent.glob(pattern) if p.is_dir()]
    return found


@pytest.mark.catalogue
def test_a_healthy_ci_sized_run_passes_and_leaves_its_artifacts(runs: Path) -> None:
    scenario = get("random-chaos")
    result = run_scenario(scenario, RunOptions(seed=3, runs_dir=runs))
    lines = [f"{c.status} {c.name}: {c.message}" for c in result.checks]
    assert result.verdict == "pass", "\n".join([str(result.run_dir), result.error, *lines])
    names = {c.name for c in result.checks}
    assert {"chaos-held", "chaos-usage", "chaos-balance", "chaos-schedule", "history-set",
            "verify-suite"} <= names
    spec = scenario.chaos
    expected = generate(seed=3, table=spec.table, nodes=scenario.topology.node_names,
                        gateways=("gateway",), payers=spec.payers, events=spec.events,
                        check_every=spec.check_every)
    assert (result.run_dir / "schedule.json").read_text() == expected.to_text()
    dumps = sorted((result.run_dir / "snapshots").glob("*.json"))
    assert len(dumps) == len(expected.checkpoint_steps()) + 1 and dumps[-1].name.endswith(
        "-final.json")
    final = json.loads(dumps[-1].read_text())
    assert final["final"] and not final["mismatches"] and final["snapshot"]["nodes"]
    history = [json.loads(line) for line in (result.run_dir / "history.jsonl").open()]
    checkpoints = [e for e in history if e["f"] == "checkpoint" and e["type"] == "ok"]
    assert len(checkpoints) == len(dumps)
    assert any(e["f"] == "fault" and e["type"] == "ok" for e in history)
    assert (result.run_dir / "report.html").stat().st_size > 40_000


def shrink_and_replay(run_dir: Path, runs: Path, prop: str) -> None:
    """--shrink keeps ``prop`` failing with at most 3 events; --replay fails it again."""
    shrunk = chaos("--shrink", str(run_dir), "--runs-dir", str(runs), "--shrink-runs", "10")
    assert shrunk.returncode == 1, shrunk.stderr[-3000:]
    assert f"still fails chaos-{prop}:" in shrunk.stdout, shrunk.stdout
    out = only_dir(runs, "*-chaos-shrink-*")
    minimal = Schedule.read(out / "schedule.json")
    assert 1 <= len(minimal.events) <= 3, shrunk.stdout
    search = json.loads((out / "shrink.json").read_text())
    assert search["property"] == prop and search["verified_by"]
    replay_runs = runs / "replay"
    replayed = chaos("--replay", str(out), "--runs-dir", str(replay_runs), "--no-verify")
    assert replayed.returncode == 1, replayed.stderr[-3000:]
    again = only_dir(replay_runs, "*-chaos-*")
    assert Schedule.read(again / "schedule.json") == minimal
    assert f"chaos-{prop}" in failed_checks(again), failed_checks(again)


def test_a_dropped_envelope_is_found_at_the_first_checkpoint(runs: Path) -> None:
    """The default lane's engine run on a real testnet: 8 events, one checkpoint."""
    found = chaos("--seed", "6", "--events", "8", "--check-every", "8", "--settle", "20",
                  "--node-env", DROP,
                  "--runs-dir", str(runs / "found"), "--no-verify")
    assert found.returncode == 1, found.stderr[-3000:]
    failed = failed_checks(only_dir(runs / "found", "*-chaos-s6"))
    assert "checkpoint 1 (after event 8): held on node-" in failed["chaos-held"], failed
    assert "missing: 200:" in failed["chaos-held"], failed


@pytest.mark.long
def test_a_dropped_envelope_is_found_shrunk_and_replayed(runs: Path) -> None:
    found = chaos("--seed", "6", "--events", "24", "--check-every", "8", "--node-env", DROP,
                  "--runs-dir", str(runs / "found"), "--no-verify")
    assert found.returncode == 1, found.stderr[-3000:]
    run_dir = only_dir(runs / "found", "*-chaos-s6")
    failed = failed_checks(run_dir)
    assert "chaos-contiguous" in failed and "chaos-held" in failed, failed
    assert "checkpoint 1 (after event 8): held on node-" in failed["chaos-held"]
    assert "predicted all" in failed["chaos-held"] and "missing: 200:" in failed["chaos-held"]
    shrink_and_replay(run_dir, runs / "shrink", "contiguous")


@pytest.mark.catalogue
def test_forgotten_usage_is_found_shrunk_and_replayed(runs: Path) -> None:
    found = chaos("--seed", "13", "--events", "24", "--check-every", "8", "--node-env", FORGET,
                  "--runs-dir", str(runs / "found"), "--no-verify")
    assert found.returncode == 1, found.stderr[-3000:]
    run_dir = only_dir(runs / "found", "*-chaos-s13")
    failed = failed_checks(run_dir)
    assert "chaos-usage" in failed and "unsettled usage 0 messages" in failed["chaos-usage"]
    shrink_and_replay(run_dir, runs / "shrink", "usage")


@pytest.mark.catalogue
@pytest.mark.parametrize("seed", [1, 2, 11])
def test_no_false_alarm_on_a_healthy_testnet(runs: Path, seed: int) -> None:
    result = run_scenario(get("random-chaos"), RunOptions(seed=seed, runs_dir=runs))
    lines = [f"{c.status} {c.name}: {c.message}" for c in result.failed_checks]
    assert result.verdict == "pass", "\n".join([str(result.run_dir), result.error, *lines])
