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
    # --no-wait: every host runs its own operations at once, not in step with the slowest
    # host at each; the deploy says itself what one host waits for (shakedown.deploy.steps).
    cmd = [sys.executable, "-m", "pyinfra", "-y", "--no-wait", str(inventory.resolve()),
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
    # pyinfra 3.10 exits 0 with --no-wait even when an operation failed: read its results too.
    if proc.returncode != 0 or _errors(output):
        raise DeployFailed(f"pyinfra {script} failed: {_last_error(output)}")
    return _summary(output)


def _last_error(output: str) -> str:
    """``<operation>: <its first error line>`` from pyinfra's output, host prefixes removed."""
    stopped = re.findall(r"PyinfraError: Error in operation (.+) on (\S+)$", output, re.M)
    if stopped:  # --no-wait: hosts log at once; read the first failed host's own lines
        operation, name = stopped[0]
        mine = [ln.strip()[len(name) + 2:].strip() for ln in output.splitlines()
                if ln.strip().startswith(f"[{name}]")]
        mine = mine[:next((k for k, ln in enumerate(mine) if ln.startswith("Error:")),
                          len(mine))]
        status = re.compile(r"^(Success|No changes|Skipped|Connected|Ready:)")
        lines = [ln for ln in mine if not status.match(ln)]
    else:
        block = output.rsplit("--> Starting operation:", 1)
        operation = block[1].splitlines()[0] if len(block) == 2 else "pyinfra"
        lines = [re.sub(r"^\[[^]]+\]\s*", "", ln.strip()) for ln in block[-1].splitlines()[1:]]
    operation = operation.strip()
    failed = [ln.split("StepFailed: ", 1)[1]
              for ln in (lines if stopped else output.splitlines()) if "StepFailed: " in ln]
    if failed:
        return f"{operation}: {failed[-1].strip()}"
    lines = [ln for ln in lines if ln and not ln.startswith("-->")]
    noise = re.compile(r"executed \d+ commands|No hosts remaining")
    for line in lines:
        if re.search(r"error|exception|timed out|not reached|failed", line, re.I) \
                and not noise.search(line):
            return f"{operation}: {line}"
    return f"{operation}: {lines[-1] if lines else 'failed'}"


def _errors(output: str) -> int:
    """The error count of pyinfra's results table (its ``Grand total`` row)."""
    match = re.search(r"Grand total\s+\d+\s+\S+\s+(\S+)", output)
    return int(match.group(1)) if match and match.group(1).isdigit() else 0


def _summary(output: str) -> str:
    """``14 operations: 7 changed, 7 unchanged`` from pyinfra's results table."""
    match = re.search(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    if not match:
        return "done"
    total, changed, _, unchanged = (g.replace("-", "0") for g in match.groups())
    return f"{total} operations: {changed} changed, {unchanged} unchanged"
