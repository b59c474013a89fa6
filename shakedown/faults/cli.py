"""``shakedown fault add | list | clear | kinds``: faults from a shell.

    shakedown fault add latency node-200 latency_ms=200 --ttl 60s
    shakedown fault add tbf h2 rate_kbit=4000 dst=10.0.0.3 -i vms.py   # an SSH host
    shakedown fault list
    shakedown fault clear            # every open fault of the inventory's testnets and hosts

Every command finds its testnets and SSH hosts with ``shakedown.faults.inventory`` and acts
through ``Injector``, whatever runs them.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError

ROUTING = ("Targets: on a Docker testnet a service (node-200, nodes, chain, db, gateway). An "
           "inventory host other than @local is an SSH host when its data says runtime: "
           "systemd or carries no testnet data (no testnet, no roles); there the target is "
           "the host's name or a service it runs (its data services: {name: unit}, or a "
           "systemd testnet's own units) and the fault acts on that host over SSH.")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(raw: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``500ms`` -> seconds."""
    match = _DURATION.match(raw.strip())
    if not match:
        raise ConfigError(f"--ttl {raw!r}: use a duration such as 60s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["latency_ms=200", "stream=both"]`` -> a dict; ConfigError for anything else, and for
    a parameter given twice (which one was meant?)."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"parameter {pair!r}: write it as name=value (e.g. latency_ms=200)")
        if key in params:
            raise ConfigError(f"parameter {key} given twice ({key}={params[key]} and "
                              f"{key}={value}); give it once")
        params[key] = value
    return params


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser,
               ) -> None:
    """The ``fault`` command and its subcommands, each with ``-i``/``-v`` from ``common``."""
    fault = subparsers.add_parser("fault", help="inject, list and clear faults",
                                  description=ROUTING)
    sub = fault.add_subparsers(dest="fault_command", required=True, metavar="add|list|clear|kinds")
    add = sub.add_parser("add", parents=[common], help="apply one fault", description=ROUTING)
    add.add_argument("kind", help="fault kind (see 'shakedown fault kinds')")
    add.add_argument("target", nargs="?", default="",
                     help="service(s): node-200, node-100,node-200, nodes, chain, db, gateway; "
                     "or one SSH host or service on it")
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


def _add(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS, Injector
    from shakedown.faults.inventory import owner

    if args.kind not in KINDS:  # before touching anything
        raise ConfigError(f"unknown fault kind {args.kind!r}; known: {', '.join(KINDS)}")
    target, pairs = args.target, list(args.params)
    if "=" in target:  # kinds with a default target: "fault add reorg depth=3"
        target, pairs = "", [target, *pairs]
    params = parse_params(pairs)
    ttl = parse_duration(args.ttl) if args.ttl else None
    with Injector(owner(inventory, target or KINDS[args.kind].default_target,
                        args.testnet)) as inj:
        entry = inj.apply(args.kind, target, params, ttl=ttl)
    print(f"shakedown: applied {entry.summary()} via {entry.mechanism}")
    return 0


def _list(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import Injector
    from shakedown.faults.inventory import backends

    for backend in backends(inventory):
        with Injector(backend) as inj:
            entries = inj.entries()
        shown = entries if args.all else [e for e in entries if e.open]
        print(f"{backend.title}: {len(shown)} {'' if args.all else 'open '}faults")
        for e in shown:
            print(f"  {e.summary()}")
    return 0


def _clear(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import Injector
    from shakedown.faults.inventory import backends

    with ExitStack() as stack:
        owners = [stack.enter_context(Injector(b)) for b in backends(inventory)]
        if args.ids:  # every id must be known before anything is cleared
            owner = {e.id: inj for inj in owners for e in inj.entries()}
            missing = [i for i in args.ids if i not in owner]
            if missing:
                raise ConfigError(f"no fault {missing[0]} in the ledgers of {inventory}; "
                                  "see 'shakedown fault list --all'")
        for inj in owners:
            if args.ids:
                cleared = [inj.clear(i) for i in args.ids if owner[i] is inj]
            else:
                cleared = inj.clear_all()
            print(f"shakedown: {inj.backend.label}: cleared {len(cleared)} fault(s)")
    return 0


def _kinds(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS

    for kind in KINDS.values():
        only = "" if len(kind.runtimes) > 1 else " (Docker hosts only)"
        print(f"{kind.name:14} {kind.summary}{only} [{', '.join(kind.roles)}] "
              f"{_params(kind.params)}".rstrip())
    print("\nOn SSH hosts (VMs, systemd testnets, services someone else deployed) a target is a "
          "host or a service on one; unit, proxy and api_port come from the target when it is "
          "a service. Parameters marked (ssh) or (docker) exist on that runtime only.")
    return 0


def _params(params: Any) -> str:
    def shown(name: str, p: Any) -> str:
        only = "" if len(p.runtimes) > 1 else f"({p.runtimes[0]})"
        return f"{name}={'<required>' if p.default is None else p.default}{only}"

    return " ".join(shown(n, p) for n, p in params.items())
