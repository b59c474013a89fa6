"""Fault kinds on a whole host (a VM reached over SSH): each kind's parameters and its plan.

A plan is shell, built here and run on the host by ``shakedown.faults.hosts``: a precheck that
refuses (exit 3, one line on stderr) before anything changes, the apply commands, and the undo
commands that go into the ledger. Every undo command is idempotent: what is already gone
counts as removed. Every artifact carries a reserved name (``shakedown.faults.names``): the
root qdisc ``5d:`` (per destination: an htb passing unclassified traffic untouched, with a
class ``5d:N`` and leaf ``5dNN:`` per fault), rules in our own iptables chain with the comment
``sd-<tag>``, a runtime drop-in ``shakedown-clock.conf``, toxics ``sd-<tag>-<stream>`` on the
host's own toxiproxy (the toxic kinds and their parameters are the Docker ones,
``shakedown.faults.kinds.TOXIC_KINDS``).

    kind = HOST_KINDS["netem"]
    values = kind.parse({"delay_ms": "100", "dst": "10.213.0.12"})
    plan = kind.plan(HostFacts(device="eth0"), values, tag="1a2b3c4d")
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shakedown.errors import ConfigError, FaultError
from shakedown.faults import tcshell
from shakedown.faults.kinds import TOXIC_KINDS, Kind, Param, Plan, toxic_params, toxics
from shakedown.faults.names import IPTABLES_CHAIN
from shakedown.faults.tcshell import REFUSED, refuse

__all__ = ["HOST_KINDS", "REFUSED", "HostFacts", "HostKind", "HostPlan", "refuse"]
_IPT = "iptables -w 5"
_UNIT = re.compile(r"^[A-Za-z0-9@._:\\-]+$")
_DEVICE = re.compile(r"^[A-Za-z0-9._@-]{1,15}$")
_PROXY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class HostFacts:
    """What a plan needs to know about the host: its NIC, routes, classes in use.

    ``routes`` maps a destination address to the device that reaches it; ``taken`` holds the
    htb class minors of open per-destination faults, per device."""

    device: str
    routes: dict[str, str] = field(default_factory=dict)
    taken: dict[str, set[int]] = field(default_factory=dict)

    def device_for(self, networks: list[str]) -> str:
        devices = {self.routes.get(n.split("/")[0], "") for n in networks}
        if len(devices) != 1 or "" in devices:
            raise ConfigError(f"destinations {', '.join(networks)} are not reached through "
                              f"one device (routes: {self.routes})")
        return devices.pop()

    def free_class(self, device: str) -> int:
        """An htb class of ours on ``device`` that no open fault uses."""
        return tcshell.free_minor(self.taken.get(device, set()), device)


@dataclass(frozen=True)
class HostPlan:
    apply: list[str]
    undo: list[str]
    mechanism: str
    precheck: str = ""
    instant: bool = False  # nothing stays behind (restart)
    notes: dict[str, Any] = field(default_factory=dict)


HostPlanner = Callable[[HostFacts, dict[str, Any], str], HostPlan]


def _unplanned(*args: Any) -> Plan:
    raise FaultError("a host fault kind has no Docker plan")


@dataclass(frozen=True)
class HostKind:
    """A fault kind on a host; ``wants_routes`` names the parameter holding destinations;
    ``toxic_path`` (``node``, ``db``, ``chain``) marks a toxic kind and the proxy it bends."""

    name: str
    summary: str
    planner: HostPlanner
    params: Mapping[str, Param] = field(default_factory=dict)
    wants_routes: str = ""
    toxic_path: str = ""

    def parse(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Typed values (the same rules as the Docker kinds); ConfigError for bad ones."""
        return Kind(self.name, self.summary, ("host",), _unplanned, self.params).parse(raw)

    def plan(self, facts: HostFacts, values: dict[str, Any], tag: str) -> HostPlan:
        return self.planner(facts, values, tag)


def networks(raw: str, what: str) -> list[str]:
    """Comma-separated IPv4 addresses or CIDRs -> normalised ``a.b.c.d/len`` strings."""
    out = []
    for item in filter(None, (s.strip() for s in raw.split(","))):
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{what}={item!r}: not an IPv4 address or network") from None
        if net.version != 4:
            raise ConfigError(f"{what}={item!r}: only IPv4 is supported")
        out.append(str(net))
    return out


def _device(facts: HostFacts, v: dict[str, Any]) -> str:
    device = v.get("device") or facts.device
    if not _DEVICE.match(device):
        raise ConfigError(f"device={device!r}: not a network device name")
    return str(device)


def _unit(v: dict[str, Any]) -> str:
    unit = str(v["unit"])
    if not _UNIT.match(unit):
        raise ConfigError(f"unit={unit!r}: not a systemd unit name")
    return unit


# --- tc: a root qdisc of ours, or one class of our htb root per destination fault -----------

def _tc_plan(facts: HostFacts, v: dict[str, Any], tag: str, qdisc: list[str],
             what: str) -> HostPlan:
    dsts = networks(v["dst"], "dst")
    if not dsts:
        dev = _device(facts, v)
        sh = tcshell.whole_device(dev, qdisc)
        mechanism = f"tc {what} on {dev} (egress, whole host)"
        notes: dict[str, Any] = {"device": dev}
    else:
        dev = v.get("device") or facts.device_for(dsts)
        _device(facts, {"device": dev})
        minor = facts.free_class(dev)
        sh = tcshell.per_destination(dev, minor, qdisc, [tcshell.dst_match(d) for d in dsts])
        mechanism = f"tc {what} on {dev} toward {', '.join(dsts)} (htb class {sh.cls} + u32)"
        notes = {"device": dev, "class": sh.cls, "minor": minor, "dst": dsts}
    return HostPlan(apply=sh.apply, undo=sh.undo, mechanism=mechanism,
                    precheck=sh.read + "\n" + sh.precheck, notes=notes)


def _netem(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    qdisc = ["netem"]
    if v["delay_ms"]:
        qdisc += ["delay", f"{v['delay_ms']}ms"]
        if v["jitter_ms"]:
            qdisc += [f"{v['jitter_ms']}ms"]
    elif v["jitter_ms"] or v["reorder_pct"]:
        raise ConfigError("netem: jitter_ms and reorder_pct need delay_ms")
    for name, word in (("loss_pct", "loss"), ("duplicate_pct", "duplicate"),
                       ("corrupt_pct", "corrupt"), ("reorder_pct", "reorder")):
        if v[name]:
            qdisc += [word, f"{v[name]:g}%"]
    if v["rate_kbit"]:
        qdisc += ["rate", f"{v['rate_kbit']}kbit"]
    if v["limit"]:
        qdisc += ["limit", str(v["limit"])]
    if len(qdisc) == 1:
        raise ConfigError("netem: give at least one of delay_ms, loss_pct, duplicate_pct, "
                          "corrupt_pct, rate_kbit")
    return _tc_plan(facts, v, tag, qdisc, "netem")  # the kernel loads sch_netem on demand


def _tbf(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    qdisc = ["tbf", "rate", f"{v['rate_kbit']}kbit", "burst", f"{v['burst_kbit']}kbit",
             "latency", f"{v['latency_ms']}ms"]
    return _tc_plan(facts, v, tag, qdisc, "tbf")


# --- iptables: our chain, rules tagged sd-<tag> ----------------------------------------------

def _ipt_add(tag: str, rules: list[str]) -> list[str]:
    """One ``iptables -S`` and one ``iptables-restore --noflush`` (each iptables process is
    slow on a small VM): create our chain and its jumps when missing, append tagged rules."""
    c = IPTABLES_CHAIN
    jumps = [(f"-A INPUT ! -i lo -j {c}", f"-I INPUT 1 ! -i lo -j {c}"),
             (f"-A OUTPUT ! -o lo -j {c}", f"-I OUTPUT 1 ! -o lo -j {c}")]
    lines = ["echo '*filter'",
             f"case \"$sd_all\" in *'-N {c}'*) ;; *) echo ':{c} - [0:0]' ;; esac",
             *(f"printf '%s\\n' \"$sd_all\" | grep -qxe '{have}' || echo '{add}'"
               for have, add in jumps),
             *(f"echo '-A {c} {r} -m comment --comment sd-{tag}'" for r in rules),
             "echo COMMIT"]
    return [f"sd_all=$({_IPT} -S)",
            "{ " + "; ".join(lines) + "; } | iptables-restore -w 5 --noflush",
            "{ conntrack -F >/dev/null 2>&1; true; }"]  # open flows meet the rules now


def ipt_remove(tag: str) -> str:
    """Delete the rules tagged ``tag``; drop our chain and its jumps once it is empty.
    Never a flush: only lines we can name are deleted."""
    c = IPTABLES_CHAIN
    mine = f"grep -E -- '--comment \"?sd-{tag}\"?( |$)'"
    jumps = [f"-A INPUT ! -i lo -j {c}", f"-A OUTPUT ! -o lo -j {c}"]
    last = " ".join(f"printf '%s\\n' \"$sd_all\" | grep -qxe '{j}' && echo '-D{j[2:]}';"
                    for j in jumps)
    return (
        f"sd_all=$({_IPT} -S 2>/dev/null) || exit 0; "
        f"sd_ours=$(printf '%s\\n' \"$sd_all\" | grep -e '^-A {c} '); "
        f"sd_mine=$(printf '%s\\n' \"$sd_ours\" | {mine}); "
        f"sd_rest=$(printf '%s\\n' \"$sd_ours\" | grep -vE -- '--comment \"?sd-{tag}\"?( |$)'); "
        f"case \"$sd_all\" in *'-N {c}'*) ;; *) exit 0 ;; esac; "
        f"if [ -z \"$sd_mine\" ] && [ -n \"$sd_rest\" ]; then exit 0; fi; "
        f"{{ echo '*filter'; printf '%s\\n' \"$sd_mine\" | sed -n 's/^-A /-D /p'; "
        f"if [ -z \"$sd_rest\" ]; then {last} echo '-X {c}'; fi; echo COMMIT; }} "
        f"| iptables-restore -w 5 --noflush")


def _rules_plan(tag: str, rules: list[str], mechanism: str) -> HostPlan:
    return HostPlan(_ipt_add(tag, rules), [ipt_remove(tag)], mechanism)


def _keep_ssh(port: int) -> list[str]:
    """SSH into this host passes our chain, so the controller can always clear the fault."""
    return [f"-p tcp --dport {port} -j RETURN", f"-p tcp --sport {port} -j RETURN"]


def _partition(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    peers = networks(v["peers"], "peers")
    if not peers:
        raise ConfigError("partition: peers=ADDR[,ADDR...] names the hosts to cut off")
    rules = _keep_ssh(v["ssh_port"])
    for p in peers:
        if v["direction"] in ("both", "out"):
            rules.append(f"-d {p} -j DROP")
        if v["direction"] in ("both", "in"):
            rules.append(f"-s {p} -j DROP")
    return _rules_plan(tag, rules, f"iptables DROP {v['direction']} with {', '.join(peers)}")


def _blackhole(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    """Everything in and out is dropped but SSH to this host (the controller keeps its way in)."""
    rules = [*_keep_ssh(v["ssh_port"]), "-j DROP"]
    return _rules_plan(tag, rules, f"iptables DROP of all but SSH (port {v['ssh_port']})")


def _loss(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    stat = f"-m statistic --mode random --probability {v['percent'] / 100:.4f} -j DROP"
    dsts = networks(v["dst"], "dst")
    rules = [f"-d {d} {stat}" for d in dsts] + [f"-s {d} {stat}" for d in dsts] or [stat]
    return _rules_plan(tag, rules, "iptables statistic DROP")


# --- processes: systemd units ----------------------------------------------------------------

def _unit_exists(unit: str) -> str:
    return refuse(f"! systemctl cat {unit} >/dev/null 2>&1", f"no systemd unit {unit}")


def _systemctl(action: str, undo: str | None) -> HostPlanner:
    def plan(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
        unit = _unit(v)
        back = [undo.format(unit=unit)] if undo else []
        return HostPlan([action.format(unit=unit)], back, action.split(" {")[0],
                        precheck=_unit_exists(unit), instant=undo is None)

    return plan


FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
CLOCK_DROPIN = "shakedown-clock.conf"


def _clock(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
    """A runtime drop-in (gone at reboot too) preloads libfaketime; the unit restarts."""
    unit = _unit(v)
    d = f"/run/systemd/system/{unit}.d"
    if "." not in unit:
        d = f"/run/systemd/system/{unit}.service.d"
    write = (f"printf '%s\\n' '[Service]' \"Environment=LD_PRELOAD=$lib\" "
             f"'Environment=FAKETIME={v['offset_s']:+g} FAKETIME_DONT_FAKE_MONOTONIC=1' "
             f"> {d}/{CLOCK_DROPIN}")
    return HostPlan(
        apply=[f"mkdir -p {d}", write,
               "systemctl daemon-reload", f"systemctl restart {unit}"],
        undo=[f"if [ -e {d}/{CLOCK_DROPIN} ]; then rm -f {d}/{CLOCK_DROPIN} && "
              f"systemctl daemon-reload && {{ ! systemctl is-active -q {unit} || "
              f"systemctl restart {unit}; }}; fi"],
        mechanism=f"libfaketime drop-in on {unit}, restarted",
        precheck=_unit_exists(unit) + "\n" +
        f"lib=$(ls {FAKETIME_GLOB} 2>/dev/null | head -n 1)\n" +
        refuse('[ -z "$lib" ]', "libfaketime is not installed (apt-get install libfaketime)"))


# --- toxics: the host's own toxiproxy, through its API on 127.0.0.1 ------------------------

# One HTTP call: SD_CALL="METHOD URL" python3 -c _HTTP [BODY]. For DELETE, a missing toxic or
# proxy (404) and a server that is not running (it keeps toxics in memory only) count as removed.
_HTTP = """import os, sys, urllib.request as r, urllib.error as e
m, url = os.environ["SD_CALL"].split(" ", 1)
body = sys.argv[1].encode() if sys.argv[1:] else None
q = r.Request(url, body, {"Content-Type": "application/json"}, method=m)
try:
    r.urlopen(q, timeout=10).close()
except e.HTTPError as x:
    if not (m == "DELETE" and x.code == 404):
        text = x.read(200).decode("utf-8", "replace")
        sys.exit(f"toxiproxy: {m} {url}: HTTP {x.code} {text}")
except OSError as x:
    why = getattr(x, "reason", x)
    if not (m == "DELETE" and isinstance(why, ConnectionRefusedError)):
        sys.exit(f"toxiproxy: {m} {url}: {why}")
"""


def toxic_call(method: str, url: str, body: dict[str, Any] | None = None) -> str:
    """Shell: one call to a toxiproxy API on the host (python3 is there for the ledger)."""
    data = f" {shlex.quote(json.dumps(body, sort_keys=True))}" if body else ""
    return f"SD_CALL={shlex.quote(f'{method} {url}')} python3 -S -c {shlex.quote(_HTTP)}{data}"


def _toxic(kind: str) -> HostPlanner:
    """Toxics of ``kind`` (one per stream) on the proxy ``proxy`` of the toxiproxy whose API
    is 127.0.0.1:``api_port`` on the host; refused when that proxy is not there."""

    def plan(facts: HostFacts, v: dict[str, Any], tag: str) -> HostPlan:
        proxy, port = str(v["proxy"]), v["api_port"]
        if not _PROXY.match(proxy):
            raise ConfigError(f"proxy={proxy!r}: not a toxiproxy proxy name")
        url = f"http://127.0.0.1:{port}/proxies/{proxy}"
        made = toxics(kind, v, tag)
        return HostPlan(
            apply=[toxic_call("POST", f"{url}/toxics", t) for t in made],
            undo=[toxic_call("DELETE", f"{url}/toxics/{t['name']}") for t in made],
            mechanism=f"toxiproxy {made[0]['type']} on {proxy} (API 127.0.0.1:{port})",
            precheck=f"{toxic_call('GET', url)} || exit {REFUSED}",
            notes={"proxy": proxy, "api_port": port, "toxics": [t["name"] for t in made]})

    return plan


_ON_HOSTS = {"node": "", "db": " (on the node's host)",
             "chain": " (from the nodes of the target's host)"}
_AT_PROXY = {"proxy": Param(str, None), "api_port": Param(int, None, 1, 65535)}


# --- the catalogue ---------------------------------------------------------------------------

_WHERE = {"device": Param(str, ""), "dst": Param(str, "")}
HOST_KINDS: dict[str, HostKind] = {
    "netem": HostKind(
        "netem", "tc netem on the host's NIC, or toward dst only (one link or a tier)", _netem,
        {**_WHERE, "delay_ms": Param(int, 0, 0, 600_000), "jitter_ms": Param(int, 0, 0, 600_000),
         "loss_pct": Param(float, 0.0, 0, 100), "duplicate_pct": Param(float, 0.0, 0, 100),
         "corrupt_pct": Param(float, 0.0, 0, 100), "reorder_pct": Param(float, 0.0, 0, 100),
         "rate_kbit": Param(int, 0, 0, 10**8), "limit": Param(int, 0, 0, 10**7)}, "dst"),
    "tbf": HostKind(
        "tbf", "shape the host's egress (or toward dst) with tc tbf", _tbf,
        {**_WHERE, "rate_kbit": Param(int, None, 8, 10**8),
         "burst_kbit": Param(int, 32, 1, 10**6), "latency_ms": Param(int, 400, 1, 60_000)},
        "dst"),
    "partition": HostKind(
        "partition", "drop traffic with peers (both, in or out); SSH to this host passes",
        _partition,
        {"peers": Param(str, None),
         "direction": Param(str, "both", choices=("both", "in", "out")),
         "ssh_port": Param(int, 22, 1, 65535)}),
    "blackhole": HostKind("blackhole", "drop everything but SSH", _blackhole,
                          {"ssh_port": Param(int, 22, 1, 65535)}),
    "loss": HostKind("loss", "drop this share of packets (iptables statistic)", _loss,
                     {"percent": Param(float, None, 0.0, 100.0), "dst": Param(str, "")}),
    "stop": HostKind("stop", "systemctl stop a unit; cleared by start",
                     _systemctl("systemctl stop {unit}", "systemctl start {unit}"),
                     {"unit": Param(str, None)}),
    "kill": HostKind("kill", "SIGKILL every process of a unit; cleared by start",
                     _systemctl("systemctl kill --signal=SIGKILL {unit}",
                                "systemctl start {unit}"), {"unit": Param(str, None)}),
    "pause": HostKind("pause", "SIGSTOP every process of a unit; cleared by SIGCONT",
                      _systemctl("systemctl kill --signal=SIGSTOP {unit}",
                                 "if systemctl is-active -q {unit}; then "
                                 "systemctl kill --signal=SIGCONT {unit}; fi"),
                      {"unit": Param(str, None)}),
    "restart": HostKind("restart", "systemctl restart a unit (nothing to clear)",
                        _systemctl("systemctl restart {unit}", None), {"unit": Param(str, None)}),
    "clock-skew": HostKind("clock-skew", "the unit's clock runs offset_s off (libfaketime)",
                           _clock, {"unit": Param(str, None),
                                    "offset_s": Param(float, None, -10**8, 10**8)}),
    **{k: HostKind(k, t.summary + _ON_HOSTS[t.path], _toxic(k), {**toxic_params(k), **_AT_PROXY},
                   toxic_path=t.path) for k, t in TOXIC_KINDS.items()},
}
