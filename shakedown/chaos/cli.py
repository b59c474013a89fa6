"""``shakedown chaos``: seeded random events on a fresh testnet, checked against the model.

    shakedown chaos --seed 7 --events 40 --check-every 10
    shakedown chaos --seed 7 --event kill:weight=2,p=0.5 --only publish,kill,start,partition,heal
    shakedown chaos --seed 7 --node-env 300:REFNODE_BUG_DROP_AFTER_RECONNECT_S=1   # must fail
    shakedown chaos --replay .shakedown/runs/<run>        # the same schedule again
    shakedown chaos --shrink .shakedown/runs/<run>        # the fewest events that still fail
    shakedown chaos --list-events                         # the table with its defaults

The inventory (``-i``, default the local one) gives the topology: nodes and gateways; every
run builds its own testnet. Exit code: 0 pass, 1 fail (a finding), 2 could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError

DEFAULTS = {"events": 40, "check_every": 10, "duration_s": 600.0, "settle_s": 60.0}


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("chaos", parents=[common], help="seeded random chaos events on "
                              "a fresh testnet, checked against a model")
    p.add_argument("--seed", type=int, help="fixes the schedule (default: drawn and recorded)")
    p.add_argument("--events", type=int, help=f"events in the schedule (default "
                                              f"{DEFAULTS['events']})")
    p.add_argument("--check-every", type=int, metavar="K", help="a checkpoint every K events "
                   f"(default {DEFAULTS['check_every']})")
    p.add_argument("--duration", type=float, metavar="S", help="stop the events after S seconds"
                   f" (default {DEFAULTS['duration_s']:g})")
    p.add_argument("--settle", type=float, metavar="S", help="how long a checkpoint waits for "
                   f"what must come true (default {DEFAULTS['settle_s']:g})")
    p.add_argument("--event", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="change one event's weight, p or parameters; repeatable")
    p.add_argument("--only", action="append", default=[], metavar="NAME,...",
                   help="keep only these events")
    p.add_argument("--config", type=Path, help="TOML: [events.NAME] tables, events_count, "
                                               "check_every, duration_s, settle_s")
    p.add_argument("--node-env", action="append", default=[], metavar="[ID:]KEY=VALUE",
                   help="node environment, e.g. 300:REFNODE_SYNC_ENABLED=0; repeatable")
    p.add_argument("--image", action="append", default=[], metavar="ROLE=REF",
                   help="image override (node, anvil, postgres, toxiproxy); repeatable")
    p.add_argument("--keep-going", action="store_true", help="play every event even after a "
                   "checkpoint failed")
    p.add_argument("--replay", type=Path, metavar="RUN_DIR", help="run RUN_DIR's schedule again")
    p.add_argument("--shrink", type=Path, metavar="RUN_DIR", help="reduce RUN_DIR's failing "
                   "schedule to the fewest events that fail the same property")
    p.add_argument("--shrink-runs", type=int, default=16, metavar="N",
                   help="at most N candidate runs while shrinking (default 16)")
    p.add_argument("--shrink-time", type=float, default=1800.0, metavar="S",
                   help="stop shrinking after S seconds (default 1800)")
    p.add_argument("--list-events", action="store_true", help="print the event table and exit")
    p.add_argument("--output", choices=("human", "json"), default="human")
    p.add_argument("--runs-dir", type=Path, help="where run directories go "
                                                 "(default .shakedown/runs)")
    p.add_argument("--keep", action="store_true", help="leave the testnet up afterwards")
    p.add_argument("--no-verify", action="store_true", help="skip the verify suite")
    p.set_defaults(handler=chaos_command)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{flag} {value:g}: must be above 0")


def _check_args(args: argparse.Namespace) -> None:
    for attr, flag in (("events", "--events"), ("check_every", "--check-every"),
                       ("duration", "--duration"), ("settle", "--settle"),
                       ("shrink_runs", "--shrink-runs"), ("shrink_time", "--shrink-time")):
        _positive(getattr(args, attr), flag)
    if args.replay and args.shrink:
        raise ConfigError("give --replay or --shrink, not both")
    chosen = [flag for flag, v in (("--seed", args.seed), ("--events", args.events),
                                   ("--check-every", args.check_every), ("--event", args.event),
                                   ("--only", args.only), ("--config", args.config)) if v]
    if (args.replay or args.shrink) and chosen:
        raise ConfigError(f"{chosen[0]}: a replayed or shrunk schedule keeps its own; drop it")


def table_from(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The event table and the run sizes from the defaults, --config and the flags."""
    from shakedown.chaos.events import apply_changes, default_table, load_toml

    data = load_toml(args.config) if args.config else {}
    table = apply_changes(default_table(), changes=data.get("events", {}),
                          where=str(args.config or "--config"))
    table = apply_changes(table, events=args.event, only=args.only)
    sizes = {"events": args.events or data.get("events_count") or DEFAULTS["events"],
             "check_every": args.check_every or data.get("check_every")
             or DEFAULTS["check_every"],
             "duration_s": args.duration or data.get("duration_s") or DEFAULTS["duration_s"],
             "settle_s": args.settle or data.get("settle_s") or DEFAULTS["settle_s"]}
    for key, value in sizes.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} {value!r}: must be a number above 0")
    return table, sizes


def topology_of(inventory: Path) -> tuple[int, int]:
    """(nodes, gateways) of the inventory's testnet: what each chaos run deploys afresh."""
    from shakedown.model import load_inventory

    testnets = load_inventory(inventory)
    local = [t for t in testnets if not t.on_hosts and not t.remote_docker]
    if not local:
        raise ConfigError(f"{inventory}: chaos builds a fresh testnet on this machine's Docker "
                          "engine; give an inventory of a local Docker testnet")
    return len(local[0].nodes), min(local[0].gateways, 1)


def list_events() -> int:
    from shakedown.chaos.events import default_table

    for spec in default_table().events:
        params = " ".join(f"{k}={v}" for k, v in spec.params)
        print(f"{spec.name:16} {spec.family:8} weight={spec.weight:<4g} p={spec.p:<4g} {params}")
        print(f"{'':16} {spec.type.summary}")
    return 0


def chaos_command(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.chaos.engine import ChaosRun, ChaosSpec, chaos_scenario
    from shakedown.chaos.generate import generate
    from shakedown.scenarios.cli import parse_images, parse_node_env
    from shakedown.scenarios.runner import DEFAULT_RUNS_DIR, EXIT, RunOptions

    if args.list_events:
        return list_events()
    _check_args(args)
    options = RunOptions(keep=args.keep, verify=not args.no_verify,
                         images=parse_images(args.image), node_env=parse_node_env(args.node_env),
                         runs_dir=(args.runs_dir or DEFAULT_RUNS_DIR).resolve(),
                         verbose=args.verbose)
    if args.shrink:
        from shakedown.chaos.shrink import Budget, shrink_command

        return shrink_command(args.shrink, options, Budget(args.shrink_runs, args.shrink_time))
    if args.replay:
        from shakedown.chaos.replay import replay_run

        scenario, schedule, images = replay_run(args.replay,
                                                stop_on_mismatch=not args.keep_going)
        options = dataclasses.replace(options, images={**images, **options.images})
    else:
        table, sizes = table_from(args)
        nodes, gateways = topology_of(inventory)
        spec = ChaosSpec(events=int(sizes["events"]), check_every=int(sizes["check_every"]),
                         duration_s=float(sizes["duration_s"]),
                         settle_s=float(sizes["settle_s"]), table=table,
                         stop_on_mismatch=not args.keep_going)
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
        scenario = chaos_scenario("chaos", spec, nodes=nodes, gateways=gateways)
        schedule = generate(seed=seed, table=table, nodes=scenario.topology.node_names,
                            gateways=("gateway",) if gateways else (), payers=spec.payers,
                            events=spec.events, check_every=spec.check_every,
                            max_per_step=spec.max_per_step)
    result = ChaosRun(scenario, options, schedule).execute()
    if args.output == "json":
        from shakedown.scenarios.report import summary_json

        print(json.dumps(summary_json([result]), indent=2, default=str))
    else:
        from shakedown.scenarios.cli import _table

        _table([result])
    if result.interrupted:
        print("shakedown: interrupted", file=sys.stderr)
        return 2
    return EXIT[result.verdict]
