"""Reports from a hand-made run: results JSON validates against the schema in the repo,
JUnit XML parses as JUnit, the HTML embeds the timeline; a teardown error sits beside the
verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from shakedown.scenarios import Scenario
from shakedown.scenarios.expectations import Check
from shakedown.scenarios.report import SCHEMA_PATH, junit_xml, summary_json, write_reports
from shakedown.scenarios.runner import Phase, RunResult
from tests.scenarios.histories import replicated_run

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def a_run(tmp_path: Path, verdict: str = "fail", teardown: list[str] | None = None,
          name: str = "chaos-network-partition") -> RunResult:
    run_dir = tmp_path / name
    run_dir.mkdir()
    ev = replicated_run()
    (run_dir / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ev.events))
    checks = [Check("history-set", "pass", "450 acknowledged envelopes present"),
              Check("catches-up(blackhole@node-300)", "fail", "node-100 behind {300: '4/20'}",
                    {"wanted": {300: 20}}, 0.01),
              Check("verify-suite", "skip", "skipped (--no-verify)")]
    if verdict == "pass":
        checks = [c for c in checks if c.status != "fail"]
    if verdict == "error":
        checks = []
    return RunResult(Scenario(name=name, description="a test run"), 7, run_dir,
                     "2026-01-01T00:00:00+00:00", testnet="sds-x-abc123", verdict=verdict,
                     error="deploy failed: port taken" if verdict == "error" else "",
                     checks=checks,
                     phases=[Phase("deploy", 0.5, 8.0), Phase("workload", 9.0, 9.0),
                             Phase("teardown", 20.0, 3.0)],
                     teardown_errors=teardown or [], duration_s=23.5,
                     traffic={"sent": 450, "acked": 450, "failed": 0, "errors": {}})


@pytest.mark.parametrize("verdict", ["pass", "fail", "error"])
def test_results_json_validates_against_the_schema(tmp_path: Path, verdict: str) -> None:
    result = a_run(tmp_path, verdict)
    write_reports(result)
    data = json.loads((result.run_dir / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["verdict"] == verdict and data["exit_code"] == {"pass": 0, "fail": 1,
                                                                 "error": 2}[verdict]
    assert [f["window"] for f in data["faults"]] == ["blackhole@node-300"]
    assert set(data["timing"]) >= {"deploy", "workload", "faults", "verify", "teardown"}


def test_the_summary_of_several_runs_validates_and_fail_wins(tmp_path: Path) -> None:
    runs = [a_run(tmp_path, "pass", name="smoke"), a_run(tmp_path, "fail"),
            a_run(tmp_path, "error", name="chaos-latency")]
    for r in runs:
        write_reports(r)
    summary = summary_json(runs)
    jsonschema.validate(summary, SCHEMA)
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1
    bad = dict(summary, verdict="maybe")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_junit_has_a_case_per_check_and_the_teardown_error_beside_the_verdict(
        tmp_path: Path) -> None:
    result = a_run(tmp_path, "fail", teardown=["teardown: pyinfra teardown.py failed: boom"])
    root = ET.fromstring(junit_xml([result, a_run(tmp_path, "error", name="smoke")]))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    run = suites["scenario.chaos-network-partition"]
    cases = {c.get("name"): c for c in run.iter("testcase")}
    assert set(cases) == {"history-set", "catches-up(blackhole@node-300)", "verify-suite",
                          "teardown"}
    failure = cases["catches-up(blackhole@node-300)"].find("failure")
    assert failure is not None and "node-100 behind" in (failure.get("message") or "")
    assert cases["verify-suite"].find("skipped") is not None
    assert cases["teardown"].find("error") is not None
    assert (run.get("tests"), run.get("failures"), run.get("errors"), run.get("skipped")) == \
        ("4", "1", "1", "1")
    props = {p.get("name"): p.get("value") for p in run.iter("property")}
    assert props["verdict"] == "fail" and props["seed"] == "7"
    error_case = next(suites["scenario.smoke"].iter("testcase"))
    assert error_case.get("name") == "run" and error_case.find("error") is not None
    assert root.get("tests") == "5" and root.get("errors") == "2"


def test_html_embeds_the_timeline_and_names_every_check(tmp_path: Path) -> None:
    result = a_run(tmp_path, "fail")
    write_reports(result)
    page = (result.run_dir / "report.html").read_text()
    assert 'id="timeline"' in page and "data:image/png;base64," in page
    assert "catches-up(blackhole@node-300)" in page and "blackhole@node-300" in page
    png_b64 = page.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
    assert len(png_b64) > 20_000  # a real figure, not an empty placeholder


def test_the_timeline_names_few_nodes_and_sums_up_many() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shakedown.scenarios.timeline import _per_node

    for count, labels in ((3, ["node-100", "node-200", "node-300"]),
                          (50, ["50 nodes, one line each"])):
        fig, ax = plt.subplots()
        _per_node(ax, {f"node-{100 * (k + 1)}": [(0.0, k), (1.0, k + 1)] for k in range(count)})
        assert len(ax.lines) == count
        assert ax.get_legend_handles_labels()[1] == labels
        plt.close(fig)
