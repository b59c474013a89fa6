"""Per-destination faults inside container namespaces: one link, or a tier between groups.

In a Docker testnet a node dials its peers through the proxy (``proxy:10000+id``), so inside
node-100's namespace "toward node-200" means TCP to the proxy's address on port 10200, plus
anything sent to node-200's own address. tc shapes these packets with the htb + u32 shell of
``shakedown.faults.tcshell`` (run under nsenter); loss drops them with iptables' statistic
match, both ways. ``direction=both`` also shapes each destination toward the targets: a tier.

Only what a namespace sends is shaped: connections a peer opened to this node arrive from the
proxy for every peer alike, so they cannot be told apart here; shape them at their source.

    links = plan_links(targets, targets.resolve("node-100"), "node-200,node-300", "both")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shakedown.errors import ConfigError, FaultError
from shakedown.faults import tcshell
from shakedown.faults.names import TC_HANDLE
from shakedown.faults.ops import in_netns
from shakedown.faults.targets import Service, Targets

DEVICE = "eth0"
DIRECTIONS = ("out", "both")


@dataclass(frozen=True)
class Link:
    """Traffic from ``source``'s namespace toward ``dests``, as (address, TCP port or 0)."""

    source: Service
    dests: tuple[Service, ...]
    endpoints: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        return f"{self.source.name}->{'+'.join(d.name for d in self.dests)}"


def plan_links(targets: Targets, services: list[Service], dst: str,
               direction: str) -> list[Link]:
    """The links a per-destination fault shapes; ConfigError for bad or empty destinations."""
    dests = targets.resolve(dst, ("node",))
    pairs = [(s, [d for d in dests if d != s]) for s in services]
    if direction == "both":
        pairs += [(d, [s for s in services if s != d and s.role == "node"]) for d in dests
                  if d not in services]
    links = [Link(src, tuple(to), tuple(e for d in to for e in _endpoints(targets, d)))
             for src, to in pairs if to]
    if not links:
        raise ConfigError(f"dst={dst}: no destination other than the target itself")
    return links


def _endpoints(targets: Targets, dest: Service) -> list[tuple[str, int]]:
    """Where packets toward ``dest`` go: its proxy listener, and its own address if running."""
    found = [(targets.ip("proxy"), dest.proxy_port)]
    if dest.name in targets.addresses:
        found.append((targets.addresses[dest.name], 0))
    return found


def tc_steps(links: list[Link], qdisc: list[str]) -> tuple[list[dict[str, Any]],
                                                            list[dict[str, Any]], list[str]]:
    """Apply and undo steps putting ``qdisc`` on each link (one htb class per namespace), and
    each link's class; refused before anything changes when a namespace has a whole-device
    qdisc of ours."""
    apply, undo, classes = [], [], []
    for link in links:
        c = link.source.container
        qdiscs = in_netns(c, ["tc", "qdisc", "show", "dev", DEVICE])
        if f" {TC_HANDLE} root" in qdiscs and f"qdisc htb {TC_HANDLE} root" not in qdiscs:
            raise FaultError(f"{link.source.name}: {DEVICE} carries a whole-device shakedown "
                             "qdisc; clear that fault first")
        used = tcshell.classes_in(in_netns(c, ["tc", "class", "show", "dev", DEVICE]))
        matches = [tcshell.dst_port_match(a, p) if p else tcshell.dst_match(f"{a}/32")
                   for a, p in link.endpoints]
        sh = tcshell.per_destination(DEVICE, tcshell.free_minor(used, link.source.name),
                                     qdisc, matches)
        apply.append({"op": "netns_sh", "container": c, "script": "\n".join([sh.read,
                                                                             *sh.apply])})
        undo.append({"op": "netns_sh", "container": c, "script": "\n".join(sh.undo),
                     "missing_ok": True})
        classes.append(f"{link.describe()} {sh.cls}")
    return apply, undo, classes


def loss_rules(link: Link, stat: list[str]) -> list[list[str]]:
    """iptables rules applying ``stat`` (a statistic DROP) to a link's packets, both ways."""
    rules = []
    for address, port in link.endpoints:
        if port:
            rules += [["-d", address, "-p", "tcp", "--dport", str(port), *stat],
                      ["-s", address, "-p", "tcp", "--sport", str(port), *stat]]
        else:
            rules += [["-d", address, *stat], ["-s", address, *stat]]
    return rules
