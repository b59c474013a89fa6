"""Scenarios run for real, each on a fresh testnet: they pass on a healthy one, and each fails
with the broken expectation named when the node behaviour it depends on is switched off
through the node's own switches (REFNODE_SYNC_ENABLED, REFNODE_API_ENABLED).

A representative set runs in every CI run; the whole catalogue carries the ``catalogue``
marker (``pytest -m catalogue``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import docker
import jsonschema
import pytest

from shakedown.scenarios.catalogue import names
from shakedown.scenarios.history import read_history
from shakedown.scenarios.report import SCHEMA_PATH
from shakedown.waiting import GiveUp, wait_for
from tests.deploy.testnets import REPO, leftovers, reap, run_cli
from tests.scenarios.adversarial import ADVERSARIAL_CAN_FAIL
from tests.scenarios.conftest import Runner, artifacts_ok, describe

SCHEMA = json.loads(SCHEMA_PATH.read_text())
OFF = "0"
# propagation: issue 14 B's one in CI (about 50 s; one client envelope sent to every node)
CI_PASS = ("smoke", "chaos-network-partition", "payer-lifecycle", "propagation")
NO_ATTEST = {200: {"REFNODE_ATTEST_ENABLED": "0"}, 300: {"REFNODE_ATTEST_ENABLED": "0"}}
# scenario -> (node_env switching the relevant behaviour off, checks that must then fail)
CAN_FAIL: dict[str, tuple[dict[int, dict[str, str]], tuple[str, ...]]] = {
    "smoke": ({300: {"REFNODE_SYNC_ENABLED": OFF}}, ("converges", "history-set")),
    "sync-verification": ({200: {"REFNODE_SYNC_ENABLED": OFF}},
                          ("vector-clocks-agree", "converges")),
    "load-progression": ({200: {"REFNODE_SYNC_ENABLED": OFF}}, ("sustainable-rate",)),
    "chaos-node-down": ({300: {"REFNODE_SYNC_ENABLED": OFF}}, ("catches-up(stop@node-300)",)),
    "chaos-latency": ({100: {"REFNODE_SYNC_ENABLED": OFF}},
                      ("replicates-during(latency@node-200)",)),
    "chaos-bandwidth-throttle": ({300: {"REFNODE_SYNC_ENABLED": OFF}},
                                 ("catches-up(bandwidth@node-100,node-200,node-300)",)),
    "chaos-connection-reset": ({200: {"REFNODE_SYNC_ENABLED": OFF}},
                               ("catches-up(reset-peer@node-200)",)),
    "chaos-network-partition": ({100: {"REFNODE_SYNC_ENABLED": OFF}},
                                ("catches-up(blackhole@node-300)",)),
    "chaos-compound-fault": ({300: {"REFNODE_SYNC_ENABLED": OFF}},
                             ("catches-up(bandwidth@node-300)",)),
    "gateway-scale": ({200: {"REFNODE_API_ENABLED": OFF}}, ("publishes-acked",)),
    "partition-recovery": ({200: {"REFNODE_SYNC_ENABLED": OFF}},
                           ("catches-up(partition@node-100)",)),
    "thundering-herd": ({300: {"REFNODE_SYNC_ENABLED": OFF}},
                        ("catches-up(blackhole@node-100,node-200,node-300)",)),
    # Two of three peers never attest: no report reaches a quorum, none settles.
    "payer-lifecycle": (NO_ATTEST, ("reports-settled",)),
    "chaos-attestation-fault": (NO_ATTEST, ("reports-settled",)),
    "multi-payer": (NO_ATTEST, ("reports-settled",)),
    "sustained-load": (NO_ATTEST, ("reports-settled",)),
    # node-300 never records others' reports from the chain: its database drifts from it.
    "settlement-verification": ({300: {"REFNODE_MIRROR_ENABLED": OFF}},
                                ("settled-matches-chain",)),
    # No node reads the RateRegistry again after its start: the new rates are never used.
    "rate-registry-change": ({n: {"REFNODE_REGISTRY_REFRESH_S": "600"} for n in (100, 200, 300)},
                             ("charged-at-rates(rates-set@chain)",)),
    # The restarted nodes never attest: quorum (3 of 4) never comes back, nothing settles.
    "stuck-state-detection": ({300: {"REFNODE_ATTEST_ENABLED": OFF},
                               400: {"REFNODE_ATTEST_ENABLED": OFF}}, ("reports-settled",)),
    # Every node forgets a payer's unsettled usage when it restarts (a planted bug).
    "random-chaos": ({n: {"REFNODE_BUG_FORGET_USAGE_ON_RESTART": "1"} for n in (100, 200, 300)},
                     ("chaos-usage",)),
    # Issue 14 B. The originals keep following every registered node: the leaver included.
    "churn": ({n: {"REFNODE_FOLLOW_REGISTERED": "1"} for n in (100, 200, 300)},
              ("leaver-not-followed(node-leave@node-300)", "history-set")),
    # Nodes refuse envelopes older than 1.5 s by their own clock: skew 2 s apart stalls them.
    "clock-skew": ({n: {"REFNODE_MAX_ENVELOPE_AGE_S": "1.5"} for n in (100, 200, 300)},
                   ("replicas-agree-under-skew(clock-skew@node-100,clock-skew@node-200)",)),
    "latency-tiers": ({300: {"REFNODE_SYNC_ENABLED": OFF}}, ("tier-lag(tbf@node-100)",)),
    # Acknowledged, then stored a second later: every kill -9 or restart loses some.
    "aggressive-chaos": ({n: {"REFNODE_WRITE_BEHIND_MS": "1000"} for n in (100, 200, 300)},
                         ("history-set",)),
    "burst-no-sync": ({100: {"REFNODE_SYNC_ENABLED": OFF}}, ("converges", "history-set")),
    # node-200 never replaces the connections the database restart broke.
    "server-restart": ({200: {"REFNODE_DB_RECONNECT": OFF}}, ("recovers(db-stop@db)",)),
    "propagation": ({200: {"REFNODE_SYNC_ENABLED": OFF}},
                    ("stored-once-per-originator(propagate)",)),
}
CAN_FAIL.update(ADVERSARIAL_CAN_FAIL)
CI_FAIL = ("chaos-node-down",)


def test_every_scenario_has_a_way_to_fail() -> None:
    assert set(CAN_FAIL) == set(names())


@pytest.fixture(scope="module")
def smoke_cli(tmp_path_factory: pytest.TempPathFactory,
              docker_client: docker.DockerClient) -> dict:
    """``shakedown run smoke --output json`` as a user runs it."""
    runs = tmp_path_factory.mktemp("cli-runs")
    proc = run_cli("run", "smoke", "--seed", "5", "--output", "json", "--runs-dir", str(runs))
    summary = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    for r in summary.get("runs", []):
        reap(docker_client, r["testnet"])
    return {"proc": proc, "summary": summary}


def test_smoke_passes_end_to_end_through_the_cli(smoke_cli: dict,
                                                 docker_client: docker.DockerClient) -> None:
    proc, summary = smoke_cli["proc"], smoke_cli["summary"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    jsonschema.validate(summary, SCHEMA)
    (result,) = summary["runs"]
    assert result["verdict"] == "pass" and summary["verdict"] == "pass"
    assert {c["name"]: c["status"] for c in result["checks"]} == {
        "publishes-acked": "pass", "converges": "pass", "nodes-serving": "pass",
        "history-set": "pass", "verify-suite": "pass"}
    assert not result["teardown_errors"] and not leftovers(docker_client, result["testnet"])
    run_dir = Path(result["run_dir"])
    artifacts_ok(run_dir)
    jsonschema.validate(json.loads((run_dir / "results.json").read_text()), SCHEMA)
    ET.parse(run_dir / "junit.xml")
    assert "smoke: verdict PASS" in proc.stderr  # progress went to the terminal


def test_the_html_report_opens_in_headless_chromium(smoke_cli: dict, tmp_path: Path) -> None:
    """A screenshot of the report shows the timeline (a real, many-coloured picture)."""
    import matplotlib.image

    (result,) = smoke_cli["summary"]["runs"]
    report = Path(result["run_dir"]) / "report.html"
    shot = Path(result["run_dir"]) / "report-screenshot.png"
    chromium = next((c for c in ("chromium", "chromium-browser", "google-chrome")
                     if subprocess.run(["which", c], capture_output=True).returncode == 0), None)
    assert chromium, "no chromium: scripts/setup installs it"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1200,1000",
                           f"--screenshot={shot}", report.as_uri()],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), proc.stderr[-2000:]
    assert shot.stat().st_size > 40_000
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 900 and pixels.shape[1] >= 1100
    colours = {tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 100, f"only {len(colours)} colours: the timeline did not render"


def test_smoke_without_sync_fails_and_junit_names_the_broken_expectations(
        tmp_path: Path, docker_client: docker.DockerClient) -> None:
    proc = run_cli("run", "smoke", "--seed", "5", "--output", "junit", "--runs-dir",
                   str(tmp_path), "--node-env", "300:REFNODE_SYNC_ENABLED=0")
    root = ET.fromstring(proc.stdout)
    suite = next(root.iter("testsuite"))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    reap(docker_client, props.get("testnet", "sds-none"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    failed = {c.get("name"): c.find("failure").get("message")  # type: ignore[union-attr]
              for c in suite.iter("testcase") if c.find("failure") is not None}
    assert {"converges", "history-set"} <= set(failed), failed
    assert "node-300 behind" in failed["converges"]
    assert failed["history-set"].startswith("node-300: ") and " lost " in failed["history-set"]
    assert props["verdict"] == "fail"


@pytest.mark.parametrize("name", [n for n in CI_PASS if n != "smoke"])
def test_scenario_passes_on_a_healthy_testnet(run: Runner, name: str) -> None:
    result = run(name)
    assert result.verdict == "pass", describe(result)
    assert result.exit_code == 0 and not result.teardown_errors
    artifacts_ok(result.run_dir)


@pytest.mark.parametrize("name", CI_FAIL)
def test_scenario_fails_when_the_node_cannot_do_what_it_checks(run: Runner, name: str) -> None:
    node_env, broken = CAN_FAIL[name]
    result = run(name, node_env=node_env)
    assert result.verdict == "fail" and result.exit_code == 1, describe(result)
    failed = {c.name for c in result.failed_checks}
    assert set(broken) <= failed, describe(result)


def _phase_begun(proc: subprocess.Popen, runs: Path, phase: str) -> bool:
    """Whether the run's history says ``phase`` has begun (GiveUp once the run has ended)."""
    if proc.poll() is not None:
        raise GiveUp(f"the run ended (exit {proc.returncode}) before phase {phase} began")
    for history in runs.glob("*/history.jsonl"):
        for event in read_history(history):
            if (event.get("f"), event.get("phase"), event.get("state")) == ("phase", phase,
                                                                           "begin"):
                return True
    return False


# phase the SIGINT lands in -> extra run options (checks: the verify suite keeps them busy)
CTRL_C_PHASES = {"deploy": ["--no-verify"], "workload": ["--no-verify"], "checks": [],
                 "teardown": ["--no-verify"]}


# The workload phase (where the race was) in every run; the other phases with ``-m long``.
@pytest.mark.parametrize("phase", [p if p == "workload" else pytest.param(p, marks=pytest.mark.long)
                                   for p in CTRL_C_PHASES])
def test_ctrl_c_in_any_phase_is_recorded_and_still_tears_down(
        phase: str, tmp_path: Path, docker_client: docker.DockerClient) -> None:
    """SIGINT once the history says ``phase`` began: results say interrupted, the history
    names the phase, faults are healed and the testnet removed. Before the checks finished
    the verdict is error (exit 2); during the teardown the checks' verdict stands."""
    proc = subprocess.Popen([sys.executable, "-m", "shakedown.cli", "run", "chaos-latency",
                             "--seed", "3", "--runs-dir", str(tmp_path), *CTRL_C_PHASES[phase]],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _phase_begun(proc, tmp_path, phase), bool, timeout=600, interval=0.1,
                 what=f"phase {phase} in the history")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "results.json").read_text())
    reap(docker_client, result["testnet"])
    history = read_history(run_dir / "history.jsonl")
    assert result["interrupted"], stderr[-3000:]
    assert [e["phase"] for e in history if e["f"] == "interrupt"] == [phase]
    if phase == "teardown":
        assert result["verdict"] == "pass" and proc.returncode == 0, stderr[-3000:]
        assert "interrupted (Ctrl-C) during teardown" in stderr
    else:
        assert result["verdict"] == "error" and proc.returncode == 2, stderr[-3000:]
        assert result["error"].startswith(f"interrupted (Ctrl-C) during {phase}"), result
    assert not result["teardown_errors"], result["teardown_errors"]
    assert not leftovers(docker_client, result["testnet"])
    if phase != "deploy":
        assert any(e["f"] == "heal" and e.get("window") == "*" for e in history)


@pytest.mark.catalogue
@pytest.mark.parametrize("name", [n for n in names() if n not in CI_PASS])
def test_catalogue_scenario_passes(run: Runner, name: str) -> None:
    result = run(name)
    assert result.verdict == "pass", describe(result)


@pytest.mark.catalogue
@pytest.mark.parametrize("name", [n for n in names() if n not in CI_FAIL])
def test_catalogue_scenario_can_fail(run: Runner, name: str) -> None:
    node_env, broken = CAN_FAIL[name]
    result = run(name, node_env=node_env)
    assert result.verdict == "fail", describe(result)
    assert set(broken) <= {c.name for c in result.failed_checks}, describe(result)
