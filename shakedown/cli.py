"""``shakedown up | status | down | fault | list | run ...``: shakedown from a shell.

``up`` and ``down`` run pyinfra on the inventory with deploy/testnet.py or deploy/teardown.py
after checking what a user can get wrong (inventory, roles, engine, ports), so bad input fails
with one line before anything is applied. Exit codes: 0 ok, 1 failed, 2 could not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from shakedown import traffic_cli
from shakedown.chain import cli as chain_cli
from shakedown.deploy.runner import REPO_ROOT, DeployFailed, run_pyinfra
from shakedown.errors import ShakedownError
from shakedown.faults import cli as faults_cli
from shakedown.model import Testnet, load_inventory
from shakedown.scenarios import cli as scenarios_cli

DEFAULT_INVENTORY = "inventories/local.py"


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
    traffic_cli.add_parser(sub, common)
    return parser


def _testnet(args: argparse.Namespace, inventory: Path) -> int:
    return run(args.command, inventory, args.verbose)


def _inventory_path(raw: str) -> Path:
    """As given, else relative to the checkout (so the default works from any directory)."""
    path = Path(raw)
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


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
        from shakedown.faults.inventory import heal_all

        problems += heal_all(inventory)
    summary = run_pyinfra(inventory, script, verbose)
    print(f"shakedown: {command} {names}: {summary} in {time.monotonic() - started:.1f} s")
    if command == "up":
        for t in testnets:
            print(f"shakedown: record {t.record_path}")
    else:
        from shakedown.faults.inventory import forget_all

        problems += forget_all(inventory)
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
