"""The verify suite as an expectation: ``pytest verify/ --inventory <run inventory>``.

Runs in a subprocess against the run's live testnet, with its JUnit XML (and JSON summary,
where the suite offers ``--json-summary``) kept in the run directory. Its failing tests name
what broke; the check repeats the first few.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shakedown.scenarios.expectations import SKIP, Check, Expectation
from shakedown.scenarios.view import RunView

REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFY_DIR = REPO_ROOT / "verify"


def read_junit(path: Path) -> dict[str, Any]:
    """Counts and the failing cases (``name: first line of the message``) of a JUnit file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    failing = []
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            bad = case.find(tag)
            if bad is not None:
                text = (bad.get("message") or bad.text or tag).strip().splitlines()
                failing.append(f"{case.get('name')}: {text[0] if text else tag}"[:300])
    return {**counts, "failing": failing}


def run_verify(inventory: Path, out_dir: Path, name: str, args: list[str],
               settle_timeout_s: float | None, timeout_s: float = 300.0) -> dict[str, Any]:
    """``pytest verify/ --inventory INVENTORY ARGS`` in a subprocess; its outputs go to
    ``out_dir/<name>-junit.xml`` (and ``-summary.json``, ``-output.txt``).

    Returns ``exit_code``, the JUnit counts and ``failing`` (see ``read_junit``), plus
    ``error`` when the suite did not run at all and ``summary`` when it wrote one.
    """
    junit = out_dir / f"{name}-junit.xml"
    summary = out_dir / f"{name}-summary.json"
    cmd = [sys.executable, "-m", "pytest", str(VERIFY_DIR), "--inventory", str(inventory),
           f"--junitxml={junit}", "-q", "-p", "no:cacheprovider", *args]
    if _has_option("--json-summary"):
        cmd.append(f"--json-summary={summary}")
    if settle_timeout_s is not None and _has_option("--settle-timeout"):
        cmd.append(f"--settle-timeout={settle_timeout_s:g}")
    out: dict[str, Any] = {"exit_code": None, "junit": junit.name, "tests": 0, "failures": 0,
                           "errors": 0, "skipped": 0, "failing": []}
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**out, "error": f"verify suite did not finish within {timeout_s:g}s"}
    (out_dir / f"{name}-output.txt").write_text(proc.stdout + proc.stderr)
    out["exit_code"] = proc.returncode
    if summary.is_file():
        try:
            out["summary"] = json.loads(summary.read_text())
        except ValueError:
            pass
    if not junit.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        return {**out, "error": f"verify suite did not run (exit {proc.returncode}): {tail[0]}"}
    return {**out, **read_junit(junit)}


@dataclass(frozen=True)
class VerifySuite(Expectation):
    """Every test of ``verify/`` passes against the run's testnet."""

    timeout_s: float = 300.0
    settle_timeout_s: float = 5.0

    @property
    def name(self) -> str:
        return "verify-suite"

    def check(self, view: RunView) -> Check:
        if not view.verify:
            return Check(self.name, SKIP, "skipped (--no-verify)")
        if not (VERIFY_DIR / "conftest.py").is_file():
            return self.failed(f"the verify suite is missing: no {VERIFY_DIR}/conftest.py "
                               "(this checkout has no verify/; run with --no-verify to skip)")
        # the run has settled already: the suite need not wait again
        details = run_verify(view.inventory, view.run_dir, "verify",
                             list(view.scenario.verify_args), self.settle_timeout_s,
                             self.timeout_s)
        if "error" in details:
            return self.failed(details["error"], **details)
        if details["exit_code"] != 0 or details["failing"]:
            shown = "; ".join(details["failing"][:3]) or f"pytest exit {details['exit_code']}"
            more = len(details["failing"]) - 3
            return self.failed(f"{len(details['failing'])} of {details['tests']} verify checks "
                               f"failed: {shown}{f' (+{more} more)' if more > 0 else ''}",
                               **details)
        return self.passed(f"{details['tests']} verify checks passed "
                           f"({details['skipped']} skipped)", **details)


def _has_option(option: str) -> bool:
    """True when the suite declares ``option`` (an older suite may not)."""
    sources = [*VERIFY_DIR.glob("*.py"), REPO_ROOT / "shakedown" / "verify" / "plugin.py"]
    for path in sources:
        try:
            if option in path.read_text():
                return True
        except OSError:
            continue
    return False
