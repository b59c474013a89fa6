"""``shakedown up | status | down | fault | list | run | chaos ...``: shakedown from a shell.

``up`` and ``down`` run pyinfra on the inventory with deploy/testnet.py or deploy/teardown.py
after checking what a user can get wrong (inventory, roles, engine, ports), so bad input fails
with one line before anything is applied. Exit codes: 0 ok, 1 failed, 2 could not run.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shakedown.chain import cli as chain_cli
from shakedown.chaos import cli as chaos_cli
from shakedown.errors import ShakedownError
from shakedown.faults import cli as faults_cli
from shakedown.model import Testnet, load_inventory
from shakedown.scenarios import cli as scenarios_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INVENTORY = "inventories/local.py"


class DeployFailed(ShakedownError):
    """pyinfra ran and reported an error (exit 1, not 2)."""


def _parser() -> argparse.ArgumentParser:
    """One subcommand per job; each takes ``-i`` and ``-v`` after its name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-i", "--inventory", default=DEFAULT_INVENTORY,
                        help=f"pyinfra inventory (default {DEFAULT_INVENTORY})")
    common.add_argument("-v", "--verbose", action="store_true", help="show pyinfra's output")
    parser = argparse.ArgumentParser(prog="shakedown", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("up", "deploy the inventory's testnets"),
                            ("status", "what runs, its health, chain head and vector clocks"),
                            ("down", "remove the inventory's testnets")):
        sub.add_parser(name, parents=[common], help=help_text).set_defaults(handler=_testnet)
    faults_cli.add_parser(sub, common)
    chain_cli.add_parser(sub, common)
    scenarios_cli.add_parsers(sub, common)
    chaos_cli.add_parser(sub, common)
    return parser


def _testnet(args: argparse.Namespace, inventory: Path) -> int:
    return run(args.command, inventory, args.verbose)


def _inventory_path(raw: str) -> Path:
    """As given, else relative to the checkout (so the default works from any directory)."""
    path = Path(raw)
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


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


def _status(testnets: list[Testnet]) -> int:
    from shakedown.deploy.preflight import preflight
    from shakedown.deploy.status import format_table, read_status

    client = preflight(testnets, ports=False) if any(not t.on_hosts for t in testnets) else None
    healthy = True
    for testnet in testnets:
        rows = read_status(testnet, client)
        print(f"testnet {testnet.name}  (record {testnet.record_path})")
        print(format_table(rows))
        healthy &= all(r.state == "running" and r.health != "down" for r in rows)
    return 0 if healthy else 1


def _ensure_images(testnets: list[Testnet], client: Any, verbose: bool) -> None:
    """Build missing images here, with progress, so the deploy only finds them."""
    if all(t.images.node and t.images.anvil and t.images.postgres for t in testnets):
        return
    from shakedown.images import ensure_images

    def log(line: str) -> None:
        if verbose or "built" in line or "debootstrap" in line or "importing" in line:
            print(f"shakedown: {line}", flush=True)

    ensure_images(client, log=log)


def run(command: str, inventory: Path, verbose: bool) -> int:
    """One command; raises ShakedownError for anything a user can cause."""
    from shakedown.deploy.preflight import preflight

    testnets = load_inventory(inventory)
    if command == "status":
        return _status(testnets)
    on_docker = [t for t in testnets if not t.on_hosts]  # systemd testnets need no engine here
    if on_docker:
        client = preflight(on_docker, ports=command == "up")
        if command == "up":
            _ensure_images(on_docker, client, verbose)
    started = time.monotonic()
    script = "testnet.py" if command == "up" else "teardown.py"
    names = ", ".join(t.name for t in testnets)
    print(f"shakedown: {command} {names} (pyinfra deploy/{script}) ...", flush=True)
    problems: list[str] = []
    if command == "down":  # heal first: a fault's ledger is what removes it
        from shakedown.faults.forget import heal_before_down

        problems += heal_before_down(inventory, testnets)
    summary = run_pyinfra(inventory, script, verbose)
    print(f"shakedown: {command} {names}: {summary} in {time.monotonic() - started:.1f} s")
    if command == "up":
        for t in testnets:
            print(f"shakedown: record {t.record_path}")
    else:
        from shakedown.faults.forget import forget_after_down

        problems += forget_after_down(inventory, testnets)
    for line in problems:
        print(f"shakedown: {line}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shakedown`` console script."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args, _inventory_path(getattr(args, "inventory", "") or
                                                      DEFAULT_INVENTORY)))
    except DeployFailed as e:
        print(f"shakedown: {e}", file=sys.stderr)
        return 1
    except ShakedownError as e:
        print(f"shakedown: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shakedown: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
