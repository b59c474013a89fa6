"""``shakedown traffic``: publish envelopes to a testnet that is up, from a shell.

    shakedown traffic                                   # 20/s for 10 s, straight to every node
    shakedown traffic --rate 50 --duration 30 --via gateway --to node-200,node-300
    shakedown traffic --count 500 --batch 10 --payers 3 --output json

Endpoints come from the testnet's deployment record. Every run is bounded by a duration
(10 s unless given, at most an hour) and by a count (rate x duration unless given); an
unbounded run does not exist. Progress goes to stderr (one line at the start; ``-v`` a line
a second), the summary (acked, failed, errors) to stdout, as JSON with ``--output json``.
Exit code: 0 every envelope acked, 1 some failed, 2 bad input or an unreachable testnet.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shakedown.client import GatewayClient, NodeClient
from shakedown.errors import ConfigError, NotFoundError, UnreachableError
from shakedown.keys import PAYERS
from shakedown.traffic import GatewayTarget, NodeTarget, Traffic, TrafficStats, payers_for

VIAS = ("node", "gateway")
MAX_DURATION_S = 3600.0
MAX_COUNT = 1_000_000
MAX_RATE = 10_000.0
MAX_BATCH = 1000
MAX_WORKERS = 16
HEALTH_TIMEOUT_S = 3.0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``traffic`` command, with ``-i``/``-v`` from ``common``."""
    p = subparsers.add_parser("traffic", parents=[common],
                              help="publish envelopes to a testnet that is up")
    p.add_argument("--testnet", help="which testnet, when the inventory has several")
    p.add_argument("--rate", default="20", help="envelopes per second (default 20)")
    p.add_argument("--duration", default="10s",
                   help=f"stop after this long: 30, 30s, 2m (default 10s, at most "
                        f"{MAX_DURATION_S:g}s)")
    p.add_argument("--count", help="stop after this many envelopes (default rate x duration)")
    p.add_argument("--batch", default="5", help="envelopes per publish call (default 5)")
    p.add_argument("--payers", default="2",
                   help="payer keys signing for --via node, round-robin (default 2)")
    p.add_argument("--workers", default="1", help="concurrent publishers (default 1)")
    p.add_argument("--via", default="node", help="node: signed here, straight to the nodes; "
                                                 "gateway: the testnet's gateway pays")
    p.add_argument("--to", default="", metavar="NODE,...",
                   help="node-200,node-300 (default every node; via gateway: the nodes the "
                        "gateway is asked to publish to)")
    p.add_argument("--output", choices=("human", "json"), default="human",
                   help="the summary on stdout: one line, or a JSON document")
    p.set_defaults(handler=traffic_command)


@dataclass(frozen=True)
class TrafficPlan:
    """What to send, validated: every bound is set."""

    rate: float
    duration_s: float
    count: int
    batch: int
    payers: int
    workers: int
    via: str
    to: tuple[str, ...]


def plan_from_args(args: argparse.Namespace) -> TrafficPlan:
    """The plan the arguments describe; ConfigError (one line) for anything out of range."""
    rate = _number("--rate", args.rate, 0.01, MAX_RATE)
    duration = _duration(args.duration)
    count = (_whole("--count", args.count, 1, MAX_COUNT) if args.count is not None
             else min(MAX_COUNT, max(1, math.ceil(rate * duration))))
    via = args.via
    if via not in VIAS:
        raise ConfigError(f"--via {via!r}: use {' or '.join(VIAS)}")
    to = tuple(n.strip() for n in args.to.split(",") if n.strip())
    for name in to:
        if not re.fullmatch(r"node-\d+", name):
            raise ConfigError(f"--to {args.to!r}: name nodes as node-200,node-300")
    return TrafficPlan(rate=rate, duration_s=duration, count=count,
                       batch=_whole("--batch", args.batch, 1, MAX_BATCH),
                       payers=_whole("--payers", args.payers, 1, len(PAYERS)),
                       workers=_whole("--workers", args.workers, 1, MAX_WORKERS),
                       via=via, to=tuple(dict.fromkeys(to)))


def _whole(flag: str, raw: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d+", raw.strip()):
        raise ConfigError(f"{flag} {raw!r}: give a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise ConfigError(f"{flag} {value}: give a whole number from {low} to {high}")
    return value


def _number(flag: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # also refuses nan and inf
        raise ConfigError(f"{flag} {raw!r}: give a number from {low:g} to {high:g}")
    return value


def _duration(raw: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m)?\s*", raw)
    seconds = float(match.group(1)) * (60 if match.group(2) == "m" else 1) if match else 0.0
    if not 0 < seconds <= MAX_DURATION_S:
        raise ConfigError(f"--duration {raw!r}: give seconds (30, 30s) or minutes (2m), more "
                          f"than 0 and at most {MAX_DURATION_S:g}s")
    return seconds


def _record(inventory: Path, testnet: str | None) -> dict[str, Any]:
    from shakedown.deploy.record import load_record
    from shakedown.model import load_inventory

    testnets = load_inventory(inventory)
    if testnet:
        testnets = [t for t in testnets if t.name == testnet]
        if not testnets:
            raise ConfigError(f"--testnet {testnet}: not in {inventory}")
    if len(testnets) > 1:
        names = ", ".join(t.name for t in testnets)
        raise ConfigError(f"the inventory has several testnets ({names}); pick one: --testnet")
    record = load_record(testnets[0].record_path)
    if not record or not record.get("nodes"):
        raise NotFoundError(f"testnet {testnets[0].name}: no deployment record at "
                            f"{testnets[0].record_path}; deploy it first (shakedown up)")
    return record


def targets_for(plan: TrafficPlan, record: dict[str, Any]
                ) -> list[NodeTarget | GatewayTarget]:
    """Where the batches go, round-robin, from the record; ConfigError for unknown names."""
    nodes = {n["name"]: n for n in record["nodes"]}
    unknown = [n for n in plan.to if n not in nodes]
    if unknown:
        raise ConfigError(f"--to {unknown[0]}: no such node in testnet {record.get('testnet')}; "
                          f"its nodes are {', '.join(nodes)}")
    picked = [nodes[n] for n in plan.to] or list(nodes.values())
    if plan.via == "node":
        return [NodeTarget(n["grpc"], int(n["node_id"])) for n in picked]
    gateway = record.get("gateway")
    if not gateway:
        raise ConfigError(f"testnet {record.get('testnet')} has no gateway; use --via node")
    if not plan.to:
        return [GatewayTarget(gateway["grpc"])]  # the gateway picks the node
    return [GatewayTarget(gateway["grpc"], int(n["node_id"])) for n in picked]


def check_reachable(targets: list[NodeTarget | GatewayTarget]) -> None:
    """Every target answers its health check, or UnreachableError naming the first that
    does not (before anything is published)."""
    for endpoint, is_node in dict.fromkeys((t.endpoint, isinstance(t, NodeTarget))
                                           for t in targets):
        client = (NodeClient if is_node else GatewayClient)(endpoint, HEALTH_TIMEOUT_S)
        try:
            serving = client.health().serving
        except Exception as e:  # grpc errors carry multi-line debug strings: keep one line
            raise UnreachableError(f"{'node' if is_node else 'gateway'} at {endpoint} did not "
                                   f"answer ({type(e).__name__}); is the testnet up? "
                                   "(shakedown status)") from None
        finally:
            client.close()
        if not serving:
            raise UnreachableError(f"{'node' if is_node else 'gateway'} at {endpoint} is not "
                                   "serving yet; try again, or see shakedown status")


def summary(plan: TrafficPlan, record: dict[str, Any], stats: TrafficStats, elapsed_s: float,
            interrupted: bool) -> dict[str, Any]:
    """The summary document (``--output json``): counts, errors, and each originator's
    acknowledged sequence range."""
    originators: dict[str, dict[str, int]] = {}
    for ack in stats.acks:
        got = originators.setdefault(str(ack.originator_node_id),
                                     {"acked": 0, "first": ack.sequence_id,
                                      "last": ack.sequence_id})
        got["acked"] += 1
        got["first"] = min(got["first"], ack.sequence_id)
        got["last"] = max(got["last"], ack.sequence_id)
    return {"schema": "shakedown/traffic/v1", "testnet": record.get("testnet"),
            "via": plan.via, "to": list(plan.to), "rate": plan.rate,
            "duration_s": plan.duration_s, "count": plan.count, "sent": stats.sent,
            "acked": stats.acked, "failed": stats.failed, "errors": dict(stats.errors),
            "elapsed_s": round(elapsed_s, 3), "interrupted": interrupted,
            "originators": dict(sorted(originators.items()))}


def say(line: str) -> None:
    print(f"shakedown: {line}", file=sys.stderr, flush=True)


def traffic_command(args: argparse.Namespace, inventory: Path) -> int:
    plan = plan_from_args(args)  # bad input fails before the inventory is read
    record = _record(inventory, args.testnet)
    targets = targets_for(plan, record)
    check_reachable(targets)
    where = ", ".join(plan.to) or ("every node" if plan.via == "node" else "the gateway's pick")
    say(f"traffic to {record.get('testnet')}: up to {plan.count} envelopes at {plan.rate:g}/s "
        f"for at most {plan.duration_s:g}s via {plan.via} ({where})")
    traffic = Traffic(targets, rate=plan.rate, duration_s=plan.duration_s,
                      max_envelopes=plan.count, batch=plan.batch,
                      payers=payers_for(plan.payers) if plan.via == "node" else None,
                      workers=plan.workers, topic=b"topic/shakedown-traffic")
    started = time.monotonic()
    interrupted = False
    traffic.start()
    try:
        while not traffic.join(1.0):
            if args.verbose:
                sent, acked, failed = traffic.counts()
                say(f"t={time.monotonic() - started:.0f}s sent {sent}, acked {acked}, "
                    f"failed {failed}")
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping after the calls in flight")
        traffic.stop()
    stats = traffic.stats
    doc = summary(plan, record, stats, time.monotonic() - started, interrupted)
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.items())) or "none"
        print(f"sent {stats.sent}, acked {stats.acked}, failed {stats.failed} in "
              f"{doc['elapsed_s']:.1f}s; errors: {errors}")
    if interrupted:
        return 2
    return 0 if stats.failed == 0 and stats.acked == stats.sent else 1
