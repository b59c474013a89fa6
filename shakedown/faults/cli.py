"""``shakedown fault add | list | clear | kinds``: faults from a shell.

    shakedown fault add latency node-200 latency_ms=200 --ttl 60s
    shakedown fault list
    shakedown fault clear            # every open fault of the inventory's testnets
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shakedown.errors import ConfigError
from shakedown.model import Testnet, load_inventory

if TYPE_CHECKING:
    from shakedown.faults import Injector

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(raw: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``500ms`` -> seconds."""
    match = _DURATION.match(raw.strip())
    if not match:
        raise ConfigError(f"--ttl {raw!r}: use a duration such as 60s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["latency_ms=200", "stream=both"]`` -> a dict; ConfigError for anything else."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"parameter {pair!r}: write it as name=value (e.g. latency_ms=200)")
        params[key] = value
    return params


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser,
               ) -> None:
    """The ``fault`` command and its subcommands, each with ``-i``/``-v`` from ``common``."""
    fault = subparsers.add_parser("fault", help="inject, list and clear faults")
    sub = fault.add_subparsers(dest="fault_command", required=True, metavar="add|list|clear|kinds")
    add = sub.add_parser("add", parents=[common], help="apply one fault")
    add.add_argument("kind", help="fault kind (see 'shakedown fault kinds')")
    add.add_argument("target", nargs="?", default="",
                     help="service(s): node-200, node-100,node-200, nodes, chain, db, gateway")
    add.add_argument("params", nargs="*", metavar="name=value", help="fault parameters")
    add.add_argument("--ttl", help="heal by itself after this long (60s, 5m), even with no "
                     "controller alive")
    add.add_argument("--testnet", help="which testnet, when the inventory has several")
    lister = sub.add_parser("list", parents=[common], help="open faults (--all: every one)")
    lister.add_argument("--all", action="store_true", help="also cleared and failed faults")
    clear = sub.add_parser("clear", parents=[common], help="clear faults (default: all open)")
    clear.add_argument("ids", nargs="*", help="ledger ids (f-...) to clear; none = all")
    sub.add_parser("kinds", help="the fault kinds and their parameters")
    fault.set_defaults(handler=run)


def run(args: argparse.Namespace, inventory: Path) -> int:
    handlers: dict[str, Callable[[argparse.Namespace, Path], int]] = {
        "add": _add, "list": _list, "clear": _clear, "kinds": _kinds}
    return handlers[args.fault_command](args, inventory)


def _injectors(inventory: Path, only: str | None = None) -> list[Injector]:
    from shakedown.faults import Injector

    testnets: list[Testnet] = load_inventory(inventory)
    if only:
        testnets = [t for t in testnets if t.name == only]
        if not testnets:
            raise ConfigError(f"--testnet {only}: not in {inventory}")
    return [Injector.for_testnet(t) for t in testnets]


def _add(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS

    if args.kind not in KINDS:  # before touching the inventory or the engine
        raise ConfigError(f"unknown fault kind {args.kind!r}; known: {', '.join(KINDS)}")
    target, pairs = args.target, list(args.params)
    if "=" in target:  # kinds with a default target: "fault add reorg depth=3"
        target, pairs = "", [target, *pairs]
    params = parse_params(pairs)
    ttl = parse_duration(args.ttl) if args.ttl else None
    injectors = _injectors(inventory, args.testnet)
    if len(injectors) > 1:
        names = ", ".join(i.testnet.name for i in injectors)
        raise ConfigError(f"the inventory has several testnets ({names}); pick one: --testnet")
    entry = injectors[0].apply(args.kind, target, params, ttl=ttl)
    print(f"shakedown: applied {entry.summary()} via {entry.mechanism}")
    return 0


def _list(args: argparse.Namespace, inventory: Path) -> int:
    for inj in _injectors(inventory):
        entries = inj.entries() if args.all else inj.active()
        print(f"testnet {inj.testnet.name}: {len(entries)} {'' if args.all else 'open '}faults")
        for e in entries:
            print(f"  {e.summary()}")
    return 0


def _clear(args: argparse.Namespace, inventory: Path) -> int:
    injectors = _injectors(inventory)
    if args.ids:  # every id must be known before anything is cleared
        owner = {e.id: inj for inj in injectors for e in inj.entries()}
        missing = [i for i in args.ids if i not in owner]
        if missing:
            raise ConfigError(f"no fault {missing[0]} in the ledgers of {inventory}; "
                              "see 'shakedown fault list --all'")
    for inj in injectors:
        if args.ids:
            cleared = [inj.clear(i) for i in args.ids if owner[i] is inj]
        else:
            cleared = inj.clear_all()
        print(f"shakedown: {inj.testnet.name}: cleared {len(cleared)} fault(s)")
    return 0


def _kinds(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS

    for kind in KINDS.values():
        params = " ".join(f"{n}={'<required>' if p.default is None else p.default}"
                          for n, p in kind.params.items())
        print(f"{kind.name:14} {kind.summary} [{', '.join(kind.roles)}] {params}".rstrip())
    return 0
