"""``shakedown fault add | list | clear | kinds``: faults from a shell.

    shakedown fault add latency node-200 latency_ms=200 --ttl 60s
    shakedown fault add tbf h2 rate_kbit=4000 dst=10.0.0.3 -i vms.py   # an SSH host
    shakedown fault list
    shakedown fault clear            # every open fault of the inventory's testnets and hosts

A target on an SSH host (``shakedown.faults.hostinv``: ``runtime: systemd``, or a host with no
testnet data) goes to ``HostInjector``; every other target to the Docker testnet's injector.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shakedown.errors import ConfigError
from shakedown.model import Testnet, load_inventory

if TYPE_CHECKING:
    from shakedown.faults import Injector
    from shakedown.faults.hostinv import HostGroup
    from shakedown.faults.hosts import HostInjector

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


def _injectors(inventory: Path, only: str | None = None) -> list[Injector]:
    """The Docker testnets' injectors (none when every host is an SSH host)."""
    from shakedown.faults import Injector

    if not _docker_hosts(inventory):
        return []
    testnets: list[Testnet] = [t for t in load_inventory(inventory) if not t.on_hosts]
    if only:
        testnets = [t for t in testnets if t.name == only]
    return [Injector.for_testnet(t) for t in testnets]


def _docker_hosts(inventory: Path) -> bool:
    from shakedown.faults.hostinv import is_ssh_host
    from shakedown.model import inventory_hosts

    return any(not is_ssh_host(n, d) and ("testnet" in d or "roles" in d)
               for n, d in inventory_hosts(inventory))


def _groups(inventory: Path, only: str | None = None) -> list[HostGroup]:
    """The inventory's SSH hosts, by ledger name; ConfigError when neither kind is there."""
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.ssh import read_hosts

    groups = host_groups(read_hosts(inventory))
    if not groups and not _docker_hosts(inventory):
        raise ConfigError(f"inventory {inventory}: no Docker testnet and no SSH host in it")
    return [g for g in groups if not only or g.testnet == only]


def _host_injector(group: HostGroup) -> HostInjector:
    from shakedown.faults.hosts import HostInjector

    return HostInjector(group.testnet, list(group.targets), group.controller_dir)


def _add(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS
    from shakedown.faults.hostkinds import HOST_KINDS

    if args.kind not in KINDS and args.kind not in HOST_KINDS:  # before touching anything
        raise ConfigError(f"unknown fault kind {args.kind!r}; known: "
                          f"{', '.join(dict.fromkeys([*KINDS, *HOST_KINDS]))}")
    target, pairs = args.target, list(args.params)
    if "=" in target:  # kinds with a default target: "fault add reorg depth=3"
        target, pairs = "", [target, *pairs]
    params = parse_params(pairs)
    ttl = parse_duration(args.ttl) if args.ttl else None
    groups = _groups(inventory, args.testnet)
    on_host = [g for g in groups if g.resolve(target)]
    if on_host:
        return _add_on_host(args.kind, on_host[0], target, params, ttl)
    injectors = _injectors(inventory, args.testnet)
    if not injectors:
        if args.testnet and not groups:
            raise ConfigError(f"--testnet {args.testnet}: not in {inventory}")
        known = sorted({n for g in groups for n in [*(t.name for t in g.targets), *g.services]})
        what = f"unknown target {target!r}" if target else f"{args.kind} needs a target"
        raise ConfigError(f"{what} in {inventory}; hosts and services: "
                          f"{', '.join(known) or 'none'}")
    if args.kind not in KINDS:
        raise ConfigError(f"{args.kind} is a fault kind of SSH hosts; {target or 'the target'} "
                          "is on a Docker testnet")
    if len(injectors) > 1:
        names = ", ".join(i.testnet.name for i in injectors)
        raise ConfigError(f"the inventory has several testnets ({names}); pick one: --testnet")
    entry = injectors[0].apply(args.kind, target, params, ttl=ttl)
    print(f"shakedown: applied {entry.summary()} via {entry.mechanism}")
    return 0


def _add_on_host(kind: str, group: HostGroup, target: str, params: dict[str, Any],
                 ttl: float | None) -> int:
    from shakedown.faults.hostkinds import HOST_KINDS

    if kind not in HOST_KINDS:
        raise ConfigError(f"{kind} acts on Docker testnets; on SSH hosts use one of "
                          f"{', '.join(HOST_KINDS)}")
    host, params = group.place(HOST_KINDS[kind], target, params)
    with _host_injector(group) as inj:
        entry = inj.apply(kind, host, params, ttl=ttl)
    print(f"shakedown: applied {entry.summary()} via {entry.mechanism}")
    return 0


def _list(args: argparse.Namespace, inventory: Path) -> int:
    groups = _groups(inventory)
    for inj in _injectors(inventory):
        _print_entries(f"testnet {inj.testnet.name}", inj.entries() if args.all
                       else inj.active(), args.all)
    for group in groups:
        with _host_injector(group) as host_inj:
            entries = host_inj.entries()
        _print_entries(f"hosts of {group.testnet} ({', '.join(t.name for t in group.targets)})",
                       entries if args.all else [e for e in entries if e.open], args.all)
    return 0


def _print_entries(title: str, entries: list[Any], every: bool) -> None:
    print(f"{title}: {len(entries)} {'' if every else 'open '}faults")
    for e in entries:
        print(f"  {e.summary()}")


def _clear(args: argparse.Namespace, inventory: Path) -> int:
    groups = _groups(inventory)
    with ExitStack() as stack:
        owners: list[tuple[str, Injector | HostInjector]] = [
            (inj.testnet.name, inj) for inj in _injectors(inventory)]
        for g in groups:
            owners.append((f"hosts of {g.testnet}", stack.enter_context(_host_injector(g))))
        if args.ids:  # every id must be known before anything is cleared
            owner = {e.id: inj for _, inj in owners for e in inj.entries()}
            missing = [i for i in args.ids if i not in owner]
            if missing:
                raise ConfigError(f"no fault {missing[0]} in the ledgers of {inventory}; "
                                  "see 'shakedown fault list --all'")
        for name, inj in owners:
            if args.ids:
                cleared = [inj.clear(i) for i in args.ids if owner[i] is inj]
            else:
                cleared = inj.clear_all()
            print(f"shakedown: {name}: cleared {len(cleared)} fault(s)")
    return 0


def _kinds(args: argparse.Namespace, inventory: Path) -> int:
    from shakedown.faults import KINDS
    from shakedown.faults.hostkinds import HOST_KINDS

    for kind in KINDS.values():
        print(f"{kind.name:14} {kind.summary} [{', '.join(kind.roles)}] "
              f"{_params(kind.params)}".rstrip())
    print("\non SSH hosts (VMs, systemd testnets, services someone else deployed; unit, proxy "
          "and api_port come from the target when it is a service or a systemd testnet's node):")
    for hk in HOST_KINDS.values():
        print(f"{hk.name:14} {hk.summary} {_params(hk.params)}".rstrip())
    return 0


def _params(params: Any) -> str:
    return " ".join(f"{n}={'<required>' if p.default is None else p.default}"
                    for n, p in params.items())
