"""Run the verify suite as a user does (a subprocess) and read its JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.testnets import REPO, Net

PYTEST = Path(sys.executable).with_name("pytest")


@dataclass(frozen=True)
class Summary:
    """One run: the process and its summary, checks by name (``test_x[node-200]``)."""

    process: subprocess.CompletedProcess[str]
    data: dict[str, Any]

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.data["checks"]}

    def failed(self) -> set[str]:
        return {n for n, c in self.checks.items() if c["outcome"] != "passed"}

    def message(self, name: str) -> str:
        return str(self.checks[name]["message"])

    def only_failed(self, expected: set[str], *fragments: str, also: frozenset[str] = frozenset()
                    ) -> None:
        """Exactly ``expected`` and ``also`` failed, each of ``expected`` naming every fragment;
        the rest passed."""
        __tracebackhide__ = True
        detail = "\n".join(f"  {n}: {c['outcome']}: {c['message']}"
                           for n, c in sorted(self.checks.items()) if c["outcome"] != "passed")
        assert self.failed() == expected | also, \
            f"expected only {sorted(expected | also)} to fail:\n{detail}"
        for name in expected:
            for fragment in fragments:
                assert fragment in self.message(name), (
                    f"{name}: message lacks {fragment!r}:\n{self.message(name)}")
        assert self.process.returncode == 1, self.process.stdout[-2000:]


def run_suite(net: Net, out: Path, *args: str, settle: float = 3.0) -> Summary:
    """``pytest verify/ --inventory=NET --json-summary=OUT ARGS`` from the repository root."""
    summary = out / "summary.json"
    summary.unlink(missing_ok=True)
    cmd = [str(PYTEST), "verify/", f"--inventory={net.inventory}", f"--json-summary={summary}",
           f"--settle-timeout={settle}", f"--envelope-cache={out / 'cache'}", "-p",
           "no:cacheprovider", *args]
    process = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert summary.is_file(), f"no summary written:\n{process.stdout[-3000:]}{process.stderr}"
    return Summary(process, json.loads(summary.read_text()))
