"""Reports of a run: results JSON (see results.schema.json), JUnit XML, an HTML page.

Everything but the verdict's own fields comes from the history file, so a report can be
rebuilt from a run directory. JUnit: one ``testsuite`` per scenario run, one ``testcase`` per
check, a ``run`` case with an ``error`` when the scenario could not run, and a ``teardown``
case with an ``error`` beside (never instead of) the verdict when teardown failed.

    write_reports(result)            # results.json, junit.xml, report.html in result.run_dir
    junit_xml([r1, r2])              # one document for several runs (``--output junit``)
"""

from __future__ import annotations

import base64
import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shakedown.scenarios.history import read_history
from shakedown.scenarios.view import RunView

if TYPE_CHECKING:
    from shakedown.scenarios.runner import RunResult

SCHEMA_ID = "shakedown/scenario-result/v1"
SUMMARY_ID = "shakedown/run-summary/v1"
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


def _view(result: RunResult) -> RunView:
    path = result.run_dir / "history.jsonl"
    events = read_history(path) if path.is_file() else []
    return RunView.from_history(result.scenario, events)


def timing(result: RunResult, view: RunView) -> dict[str, float]:
    """Seconds spent in deploy, workload, faults, verify, teardown, and the rest."""
    phases = {p.name: p.duration_s for p in result.phases}
    invoked: dict[int, float] = {}
    faults = 0.0
    for e in view.events:
        if e.get("f") in ("fault", "heal", "action"):
            if e.get("type") == "invoke":
                invoked[e["op"]] = e["t"]
            elif e.get("op") in invoked:
                faults += e["t"] - invoked.pop(e["op"])
    verify = sum(c.duration_s for c in result.checks if c.name == "verify-suite")
    out = {
        "deploy": phases.get("deploy", 0.0),
        "workload": phases.get("workload", 0.0),
        "faults": round(faults, 3),
        "settle": phases.get("heal", 0.0) + phases.get("settle", 0.0),
        "verify": round(verify, 3),
        "checks": round(phases.get("checks", 0.0) - verify, 3),
        "teardown": phases.get("teardown", 0.0),
    }
    out["other"] = round(max(0.0, result.duration_s - sum(out.values()) + out["faults"]), 3)
    return {k: round(v, 3) for k, v in out.items()}


def result_json(result: RunResult, view: RunView | None = None) -> dict[str, Any]:
    """The results document of one run (validates against results.schema.json)."""
    view = view or _view(result)
    sc = result.scenario
    faults = [{"window": w.label, "kind": w.kind, "target": w.target,
               "applied_s": round(w.start, 3),
               "cleared_s": None if w.end is None else round(w.end, 3),
               "error": w.error or None} for w in view.windows.values()]
    logs = sorted(str(p.relative_to(result.run_dir)) for p in (result.run_dir / "logs").glob("*"))
    return {
        "schema": SCHEMA_ID,
        "scenario": sc.name,
        "description": sc.description,
        "seed": result.seed,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "error": result.error or None,
        "interrupted": result.interrupted,
        "started_at": result.started_at,
        "duration_s": result.duration_s,
        "testnet": result.testnet,
        "kept": result.kept,
        "run_dir": str(result.run_dir),
        "topology": {"nodes": sc.topology.nodes, "gateways": sc.topology.gateways,
                     "chaos": sc.topology.chaos, "images": dict(sc.topology.images),
                     "node_env": {str(k): dict(v) for k, v in sc.topology.node_env.items()}},
        "phases": [{"name": p.name, "start_s": p.start_s, "duration_s": p.duration_s,
                    "ok": p.ok, "error": p.error or None} for p in result.phases],
        "timing": timing(result, view),
        "checks": [c.to_json() for c in result.checks],
        "faults": faults,
        "fault_errors": result.fault_errors,
        "teardown_errors": result.teardown_errors,
        "traffic": {"sent": 0, "acked": 0, "failed": 0, "errors": {}, **result.traffic},
        "metrics": result.metrics,
        "artifacts": {"history": "history.jsonl", "results": "results.json",
                      "junit": "junit.xml", "report": "report.html", "logs": logs},
    }


def summary_json(results: list[RunResult]) -> dict[str, Any]:
    """What ``shakedown run --output json`` prints: every run and the overall verdict."""
    from shakedown.scenarios.runner import EXIT

    verdict = overall_verdict(results)
    return {"schema": SUMMARY_ID, "verdict": verdict, "exit_code": EXIT[verdict],
            "runs": [json.loads((r.run_dir / "results.json").read_text())
                     if (r.run_dir / "results.json").is_file() else result_json(r)
                     for r in results]}


def overall_verdict(results: list[RunResult]) -> str:
    """fail if any run failed (a finding beats an infrastructure problem), else error if any
    could not run, else pass."""
    verdicts = {r.verdict for r in results}
    return "fail" if "fail" in verdicts else "error" if "error" in verdicts or not results \
        else "pass"


def junit_xml(results: list[RunResult]) -> str:
    root = ET.Element("testsuites", name="shakedown")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for r in results:
        suite = _suite(r)
        root.append(suite)
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
        total_time += r.duration_s
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _suite(r: RunResult) -> ET.Element:
    suite = ET.Element("testsuite", name=f"scenario.{r.scenario.name}", timestamp=r.started_at,
                       time=f"{r.duration_s:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("seed", r.seed), ("verdict", r.verdict), ("testnet", r.testnet),
                        ("run_dir", r.run_dir)):
        ET.SubElement(props, "property", name=name, value=str(value))
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)

    def case(name: str, seconds: float) -> ET.Element:
        counts["tests"] += 1
        return ET.SubElement(suite, "testcase", classname=f"scenario.{r.scenario.name}",
                             name=name, time=f"{seconds:.3f}")

    if r.verdict == "error" or (r.error and not r.checks):
        bad = ET.SubElement(case("run", r.duration_s), "error", message=r.error or "did not run")
        bad.text = r.error
        counts["errors"] += 1
    for c in r.checks:
        tc = case(c.name, c.duration_s)
        if c.status == "fail":
            f = ET.SubElement(tc, "failure", message=c.message[:500])
            f.text = f"{c.name}: {c.message}\n{json.dumps(c.details, default=str)[:4000]}"
            counts["failures"] += 1
        elif c.status == "skip":
            ET.SubElement(tc, "skipped", message=c.message)
            counts["skipped"] += 1
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = c.message
    if r.teardown_errors:
        err = ET.SubElement(case("teardown", 0.0), "error",
                            message="; ".join(r.teardown_errors)[:500])
        err.text = "\n".join(r.teardown_errors)
        counts["errors"] += 1
    for k, v in counts.items():
        suite.set(k, str(v))
    return suite


def write_reports(result: RunResult) -> None:
    """results.json, junit.xml and report.html into the run directory."""
    view = _view(result)
    data = result_json(result, view)
    (result.run_dir / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (result.run_dir / "junit.xml").write_text(junit_xml([result]))
    (result.run_dir / "report.html").write_text(render_html(data, view))


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2a9d8f} .fail{background:#d62828} .error{background:#6d6875}
.skip{background:#8d99ae}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f4f4f4} .muted{color:#666} img{width:100%}
code{font-size:12px}
"""


def render_html(data: dict[str, Any], view: RunView) -> str:
    """A self-contained page: verdict, timeline (embedded PNG), checks, faults, phases."""
    from shakedown.scenarios.timeline import render_png

    esc = html.escape
    png = base64.b64encode(render_png(view, f"{data['scenario']} (seed {data['seed']})"))
    rows = "".join(
        f"<tr><td><span class='verdict {esc(c['status'])}'>{esc(c['status'])}</span></td>"
        f"<td><code>{esc(c['name'])}</code></td><td>{esc(c['message'])}</td>"
        f"<td>{c['duration_s']:.2f}s</td></tr>" for c in data["checks"])
    faults = "".join(
        f"<tr><td><code>{esc(f['window'])}</code></td><td>{f['applied_s']:.1f}s</td>"
        f"<td>{'' if f['cleared_s'] is None else format(f['cleared_s'], '.1f') + 's'}</td>"
        f"<td>{esc(f['error'] or '')}</td></tr>" for f in data["faults"])
    phases = "".join(f"<tr><td>{esc(p['name'])}</td><td>{p['duration_s']:.1f}s</td>"
                     f"<td>{esc(p['error'] or '')}</td></tr>" for p in data["phases"])
    listed = ([data["error"]] if data["error"] else []) + data["fault_errors"] + \
        [f"teardown: {t}" for t in data["teardown_errors"]]
    problems = "".join(f"<li>{esc(e)}</li>" for e in listed)
    traffic = data["traffic"]
    logs = "".join(f"<li><a href='{esc(p)}'>{esc(p)}</a></li>" for p in data["artifacts"]["logs"])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>shakedown {esc(data['scenario'])}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(data['scenario'])} <span class="verdict {esc(data['verdict'])}">
{esc(data['verdict'].upper())}</span></h1>
<div class="muted">{esc(data['description'])}<br>seed {data['seed']} &middot; testnet
{esc(data['testnet'])} &middot; started {esc(data['started_at'])} &middot;
{data['duration_s']:.1f}s &middot; traffic: {traffic['acked']} acked, {traffic['failed']}
not acked of {traffic['sent']}</div>
{f'<h2>Problems</h2><ul>{problems}</ul>' if problems else ''}
<h2>Timeline</h2>
<img id="timeline" alt="timeline: fault windows over throughput, replication lag and
per-node envelope counts" src="data:image/png;base64,{png.decode()}">
<h2>Checks</h2><table><tr><th></th><th>check</th><th>result</th><th>took</th></tr>{rows}</table>
<h2>Faults</h2><table><tr><th>window</th><th>applied</th><th>cleared</th><th>error</th></tr>
{faults or '<tr><td colspan=4 class=muted>none</td></tr>'}</table>
<h2>Phases</h2><table><tr><th>phase</th><th>took</th><th>error</th></tr>{phases}</table>
<h2>Artifacts</h2><ul><li><a href="history.jsonl">history.jsonl</a></li>
<li><a href="results.json">results.json</a></li><li><a href="junit.xml">junit.xml</a></li>
{logs}</ul>
</body></html>
"""
