"""``shakedown list`` and ``shakedown run NAME... | --all``: scenarios from a shell.

    shakedown list
    shakedown run smoke --seed 7
    shakedown run --all --output junit > scenarios.xml
    shakedown run chaos-node-down --node-env 300:REFNODE_SYNC_ENABLED=0   # must fail

Progress goes to stderr, one line per phase and event (-v: pyinfra's output too); the result
(a table, JSON or JUnit XML) to stdout. Exit code: 0 every run passed, 1 a run failed,
2 a run could not run (and none failed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shakedown.errors import ConfigError
from shakedown.model import ENV_NAME

OUTPUTS = ("human", "json", "junit")
IMAGE_ROLES = ("node", "anvil", "postgres", "toxiproxy")


def add_parsers(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``list`` and ``run`` commands."""
    ls = subparsers.add_parser("list", help="list the scenario catalogue")
    ls.add_argument("-v", "--verbose", action="store_true", help="show each scenario's steps")
    ls.set_defaults(handler=list_command)
    run = subparsers.add_parser("run", help="run scenarios, each on a fresh testnet")
    run.add_argument("names", nargs="*", metavar="NAME", help="scenarios to run (see list)")
    run.add_argument("--all", action="store_true", help="run the whole catalogue")
    run.add_argument("--seed", type=int, help="fixes the fault schedule (default: drawn, "
                                              "printed and recorded)")
    run.add_argument("--output", choices=OUTPUTS, default="human",
                     help="what goes to stdout: a table, JSON or JUnit XML")
    run.add_argument("--keep", action="store_true", help="leave the testnet up afterwards")
    run.add_argument("--image", action="append", default=[], metavar="ROLE=REF",
                     help=f"image override ({', '.join(IMAGE_ROLES)}); repeatable")
    run.add_argument("--node-env", action="append", default=[], metavar="[ID:]KEY=VALUE",
                     help="node environment override, e.g. 300:REFNODE_SYNC_ENABLED=0 "
                          "(no ID: every node); repeatable")
    run.add_argument("--runs-dir", type=Path, help="where run directories go "
                                                   "(default .shakedown/runs)")
    run.add_argument("--no-verify", action="store_true", help="skip the verify suite")
    run.add_argument("-v", "--verbose", action="store_true", help="detailed progress")
    run.set_defaults(handler=run_command)


def list_command(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.scenarios.catalogue import catalogue

    for name, sc in catalogue().items():
        print(f"{name:26} {sc.description}")
        if args.verbose:
            print("    " + sc.steps.replace("\n", "\n    ") + "\n")
    return 0


def parse_images(pairs: list[str]) -> dict[str, str]:
    images = {}
    for pair in pairs:
        role, sep, ref = pair.partition("=")
        if not sep or role not in IMAGE_ROLES or not ref.strip():
            raise ConfigError(f"--image {pair!r}: write ROLE=REF with ROLE one of "
                              f"{', '.join(IMAGE_ROLES)}")
        images[role] = ref
    return images


def check_images_exist(images: dict[str, str]) -> None:
    """Every ``--image`` names an image on the Docker engine (there may be no registry)."""
    if not images:
        return
    import docker.errors

    from shakedown.images import connect

    client = connect(timeout=10)
    for role, ref in images.items():
        try:
            client.images.get(ref)
        except (docker.errors.ImageNotFound, docker.errors.APIError) as e:
            why = "not on the Docker engine" if isinstance(e, docker.errors.ImageNotFound) \
                else "not a usable image reference"
            raise ConfigError(f"--image {role}={ref}: {why}; build it (python -m "
                              "shakedown.images) or name one `docker images` lists") from None


def parse_node_env(pairs: list[str]) -> dict[int, dict[str, str]]:
    """``["300:REFNODE_SYNC_ENABLED=0", "REFNODE_LOG_LEVEL=DEBUG"]`` -> {300: {...}, 0: {...}}."""
    env: dict[int, dict[str, str]] = {}
    for pair in pairs:
        head, sep, value = pair.partition("=")
        node, colon, key = head.rpartition(":")
        if not sep or not key or (colon and not node.isdigit()):
            raise ConfigError(f"--node-env {pair!r}: write [ID:]KEY=VALUE, e.g. "
                              "300:REFNODE_SYNC_ENABLED=0")
        if colon and int(node) == 0:
            raise ConfigError(f"--node-env {pair!r}: there is no node 0 (ids are 100, 200, "
                              "...); leave the ID out to set it on every node")
        if not ENV_NAME.match(key):
            raise ConfigError(f"--node-env {pair!r}: {key!r} is not an environment variable "
                              "name (A-Z, 0-9, _)")
        env.setdefault(int(node) if colon else 0, {})[key] = value
    return env


def run_command(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.scenarios.catalogue import get, names
    from shakedown.scenarios.report import junit_xml, overall_verdict, summary_json
    from shakedown.scenarios.runner import (
        DEFAULT_RUNS_DIR,
        EXIT,
        RunOptions,
        run_scenario,
        with_overrides,
    )

    if args.all and args.names:
        raise ConfigError("give scenario names or --all, not both")
    if not args.all and not args.names:
        raise ConfigError(f"name a scenario or use --all; known: {', '.join(names())}")
    scenarios = [get(n) for n in (names() if args.all else args.names)]
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: use a number >= 0")
    runs_dir = (args.runs_dir or DEFAULT_RUNS_DIR).resolve()
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {runs_dir}: is a file; name a directory")
    options = RunOptions(seed=args.seed, keep=args.keep, verify=not args.no_verify,
                         images=parse_images(args.image), node_env=parse_node_env(args.node_env),
                         runs_dir=runs_dir, verbose=args.verbose)
    for scenario in scenarios:  # every override fits every scenario, before any run starts
        with_overrides(scenario, options)
    check_images_exist(dict(options.images))
    results = []
    for scenario in scenarios:
        result = run_scenario(scenario, options)
        results.append(result)
        if result.interrupted:
            break
    verdict = overall_verdict(results)
    if args.output == "json":
        print(json.dumps(summary_json(results), indent=2, default=str))
    elif args.output == "junit":
        print(junit_xml(results))
    else:
        _table(results)
    if len(results) < len(scenarios):
        print(f"shakedown: interrupted; {len(scenarios) - len(results)} scenarios not run",
              file=sys.stderr)
        return 2
    return EXIT[verdict]


def _table(results: list) -> None:
    print(f"{'scenario':26} {'verdict':8} {'time':>7}  {'checks':8} run directory")
    for r in results:
        passed = sum(1 for c in r.checks if c.status == "pass")
        print(f"{r.scenario.name:26} {r.verdict.upper():8} {r.duration_s:6.1f}s  "
              f"{passed}/{len(r.checks):<6} {r.run_dir}")
        for c in r.failed_checks:
            print(f"    FAIL {c.name}: {c.message}")
        if r.verdict == "error":
            print(f"    ERROR {r.error}")
        for t in r.teardown_errors:
            print(f"    TEARDOWN {t}")
