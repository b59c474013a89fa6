"""Run pyinfra on an inventory with one of deploy/'s scripts, as the CLI and the scenario
runner both do: its summary line, or its last error line as ``DeployFailed``.

    run_pyinfra(Path("inventories/local.py"), "testnet.py", verbose=False)
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from shakedown.errors import ShakedownError

REPO_ROOT = Path(__file__).resolve().parents[2]


class DeployFailed(ShakedownError):
    """pyinfra ran and reported an error (exit 1, not 2)."""


def run_pyinfra(inventory: Path, script: str, verbose: bool, *, timeout_s: float | None = None,
                new_session: bool = False) -> str:
    """Run pyinfra; return its summary line or raise DeployFailed with its last error line.

    ``timeout_s`` kills pyinfra when it runs longer; ``new_session`` keeps a terminal's Ctrl-C
    away from it (teardown must finish even when the user interrupts the run).
    """
    cmd = [sys.executable, "-m", "pyinfra", "-y", str(inventory.resolve()),
           str(REPO_ROOT / "deploy" / script)]
    lines: list[str] = []
    started = time.time()
    with subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=new_session) as proc:
        timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # streamed with -v: a deploy takes seconds to minutes
                lines.append(line)
                if verbose:
                    print(line, end="", flush=True)
        except BaseException:  # Ctrl-C or a crash here: pyinfra must not go on deploying alone
            proc.terminate()
            raise
        finally:
            if timer:
                timer.cancel()
    output = "".join(lines)
    debug_log = REPO_ROOT / "pyinfra-debug.log"  # pyinfra leaves it on errors; ours only
    if debug_log.exists() and debug_log.stat().st_mtime >= started:
        debug_log.unlink(missing_ok=True)
    if timeout_s and proc.returncode == -signal.SIGKILL:
        raise DeployFailed(f"pyinfra {script}: killed after {timeout_s:g}s without finishing")
    if proc.returncode != 0:
        raise DeployFailed(f"pyinfra {script} failed: {_last_error(output)}")
    return _summary(output)


def _last_error(output: str) -> str:
    """``<operation>: <its first error line>`` from pyinfra's output, host prefixes removed."""
    failed = [ln.split("StepFailed: ", 1)[1] for ln in output.splitlines() if "StepFailed: " in ln]
    block = output.rsplit("--> Starting operation:", 1)
    operation = block[1].splitlines()[0].strip() if len(block) == 2 else "pyinfra"
    lines = [re.sub(r"^\[[^]]+\]\s*", "", ln.strip()) for ln in block[-1].splitlines()[1:]]
    if failed:
        return f"{operation}: {failed[-1].strip()}"
    lines = [ln for ln in lines if ln and not ln.startswith("-->")]
    noise = re.compile(r"executed \d+ commands|No hosts remaining")
    for line in lines:
        if re.search(r"error|exception|timed out|not reached|failed", line, re.I) \
                and not noise.search(line):
            return f"{operation}: {line}"
    return f"{operation}: {lines[-1] if lines else 'failed'}"


def _summary(output: str) -> str:
    """``14 operations: 7 changed, 7 unchanged`` from pyinfra's results table."""
    match = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    if not match:
        return "done"
    total, changed, _, unchanged = (g.replace("-", "0") for g in match.groups())
    return f"{total} operations: {changed} changed, {unchanged} unchanged"
