"""The fault catalogue: each kind's parameters, allowed targets, and its plan.

A plan is data: the steps that apply the fault and the steps that undo it
(``shakedown.faults.ops``), plus the mechanism used, so the ledger can hold the undo before
anything happens. Parameters carry their unit in their name (``latency_ms``, ``rate_kbit``).

    kind = KINDS["latency"]
    values = kind.parse({"latency_ms": "200"})
    plan = kind.plan(targets, targets.resolve("node-200"), values, tag="1a2b3c4d")
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from shakedown.errors import ConfigError, FaultError
from shakedown.faults import links
from shakedown.faults.names import TC_HANDLE, TOXIC_PREFIX
from shakedown.faults.ops import container_pid, in_netns
from shakedown.faults.targets import Service, Targets
from shakedown.model import NODE_PORT

Step = dict[str, Any]
Action = Step | Callable[[], None]  # apply steps may run in-process; undo steps are data


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default (None = required) and bounds."""

    type: type = float
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, name: str, raw: Any) -> Any:
        try:
            value = self.type(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={raw!r}: expected a {self.type.__name__}") from None
        if self.choices and value not in self.choices:
            raise ConfigError(f"{name}={value!r}: choose one of {', '.join(self.choices)}")
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise ConfigError(f"{name}={value}: must be within {self.low}-{self.high}")
        return value


@dataclass(frozen=True)
class Plan:
    apply: Sequence[Action]
    undo: list[Step]
    mechanism: str
    instant: bool = False  # nothing stays behind to clear (restart, reorg)


Planner = Callable[[Targets, list[Service], dict[str, Any], str], Plan]


@dataclass(frozen=True)
class Kind:
    """A fault kind: what it does, on which roles, with which parameters."""

    name: str
    summary: str
    roles: tuple[str, ...]
    planner: Planner
    params: Mapping[str, Param] = field(default_factory=dict)
    default_target: str = ""

    def parse(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Typed values for every parameter; ConfigError for unknown, missing or bad ones."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ConfigError(f"{self.name}: unknown parameter {unknown[0]!r}; known: {known}")
        values = {}
        for name, param in self.params.items():
            if name in raw:
                values[name] = param.parse(name, raw[name])
            elif param.default is None:
                raise ConfigError(f"{self.name}: missing parameter {name}=...")
            else:
                values[name] = param.default
        return values

    def plan(self, targets: Targets, services: list[Service], values: dict[str, Any],
             tag: str) -> Plan:
        return self.planner(targets, services, values, tag)


# --- toxics ----------------------------------------------------------------------------------

_STREAM = {"stream": Param(str, "downstream", choices=("downstream", "upstream", "both")),
           "toxicity": Param(float, 1.0, 0.0, 1.0)}
# kind -> (toxiproxy type, {our parameter: (toxiproxy attribute, Param)})
_TOXICS: dict[str, tuple[str, dict[str, tuple[str, Param]]]] = {
    "latency": ("latency", {"latency_ms": ("latency", Param(int, None, 0, 600_000)),
                            "jitter_ms": ("jitter", Param(int, 0, 0, 600_000))}),
    "bandwidth": ("bandwidth", {"rate_kbps": ("rate", Param(int, None, 0, 10**9))}),
    "slow-close": ("slow_close", {"delay_ms": ("delay", Param(int, None, 0, 600_000))}),
    "timeout": ("timeout", {"timeout_ms": ("timeout", Param(int, 0, 0, 3_600_000))}),
    "reset-peer": ("reset_peer", {"timeout_ms": ("timeout", Param(int, 0, 0, 3_600_000))}),
    "slicer": ("slicer", {"average_size": ("average_size", Param(int, 64, 1, 10**6)),
                          "size_variation": ("size_variation", Param(int, 0, 0, 10**6)),
                          "delay_us": ("delay", Param(int, 0, 0, 10**7))}),
    "limit-data": ("limit_data", {"bytes": ("bytes", Param(int, None, 0, 10**12))}),
}


def _proxies(targets: Targets, services: list[Service], db: bool) -> list[str]:
    """Toxiproxy proxies in front of ``services``: a node's own, its database's, the chain's."""
    names = []
    for s in services:
        if s.role == "node":
            names.append(f"{s.name}-db" if db else s.name)
        elif s.role == "chain":
            names.append("chain")
        elif s.role == "db":
            names += [f"{n.name}-db" for n in targets.nodes]
        else:
            raise ConfigError(f"{s.name} has no toxiproxy in front; toxics apply to nodes, "
                              "their databases and the chain")
    return names


@dataclass(frozen=True)
class ToxicKind:
    """A toxic fault kind: its toxic (a key of ``_TOXICS``) on one path through the proxy:
    ``node`` (peers and the gateway to the node), ``db`` (node to its database) or ``chain``."""

    toxic: str
    path: str
    summary: str


TOXIC_KINDS: dict[str, ToxicKind] = {
    **{k: ToxicKind(k, "node", f"toxiproxy {t} on the proxy in front of the target")
       for k, (t, _) in _TOXICS.items()},
    "chain-latency": ToxicKind("latency", "chain", "latency on every call to the chain RPC"),
    "db-latency": ToxicKind("latency", "db", "latency between nodes and their databases"),
    "db-reset": ToxicKind("reset-peer", "db",
                          "reset connections between nodes and their databases"),
}


def toxics(kind: str, values: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """The toxiproxy toxics (API bodies) of one fault of ``kind`` (``latency``, ``db-reset``):
    one per stream, named ``sd-<tag>-<stream>``."""
    toxic_type, attrs = _TOXICS[TOXIC_KINDS[kind].toxic]
    streams = ["downstream", "upstream"] if values["stream"] == "both" else [values["stream"]]
    attributes = {attr: values[ours] for ours, (attr, _) in attrs.items()}
    return [{"name": f"{TOXIC_PREFIX}{tag}-{stream}", "type": toxic_type, "stream": stream,
             "toxicity": values["toxicity"], "attributes": attributes} for stream in streams]


def toxic_params(kind: str) -> dict[str, Param]:
    """The parameters of a toxic kind, shared by the Docker and the host kinds."""
    return {ours: param for ours, (_, param) in _TOXICS[TOXIC_KINDS[kind].toxic][1].items()} \
        | _STREAM


def _toxic_planner(kind: str) -> Planner:
    db = TOXIC_KINDS[kind].path == "db"

    def plan(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        apply, undo = [], []
        for proxy in _proxies(targets, services, db):
            for toxic in toxics(kind, v, tag):
                where = {"api": targets.proxy_api, "proxy": proxy, "name": toxic["name"]}
                apply.append({"op": "toxic_add", **toxic, **where})
                undo.append({"op": "toxic_remove", **where})
        return Plan(apply, undo, f"toxiproxy {_TOXICS[TOXIC_KINDS[kind].toxic][0]}")

    return plan


# --- iptables --------------------------------------------------------------------------------

def _rules_plan(rules: dict[str, list[list[str]]], tag: str, mechanism: str) -> Plan:
    """Rules per container -> add them all; undo removes this tag's rules everywhere."""
    apply = [{"op": "iptables_add", "container": c, "tag": tag, "rules": r}
             for c, r in rules.items() if r]
    undo = [{"op": "iptables_remove", "container": c, "tag": tag} for c in rules]
    return Plan(apply, undo, mechanism)


def _cut(proxy_ip: str, peers: list[Service]) -> list[list[str]]:
    """Nothing on connections from here to ``peers`` (dialled through their proxy listeners),
    either way: dropping only one direction lets a sender fill its TCP window regardless."""
    rules = []
    for p in peers:
        port = str(p.proxy_port)
        rules += [["-d", proxy_ip, "-p", "tcp", "--dport", port, "-j", "DROP"],
                  ["-s", proxy_ip, "-p", "tcp", "--sport", port, "-j", "DROP"]]
    return rules


def _unreachable(proxy_ip: str) -> list[list[str]]:
    """Nothing on connections the proxy opened to this node's API, either way."""
    port = str(NODE_PORT)
    return [["-s", proxy_ip, "-p", "tcp", "--dport", port, "-j", "DROP"],
            ["-d", proxy_ip, "-p", "tcp", "--sport", port, "-j", "DROP"]]


def _blackhole(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """Peers and the gateway reach a node only through the proxy: drop both directions."""
    proxy_ip = targets.ip("proxy")
    rules = {}
    for s in services:
        peers = [n for n in targets.nodes if n not in services]
        rules[s.container] = [*_cut(proxy_ip, peers), *_unreachable(proxy_ip)]
    return _rules_plan(rules, tag, "iptables DROP of proxy traffic in the node's netns")


def _partition(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """Group ``services`` vs ``others``: connections across are dropped where they start."""
    others = targets.resolve(v["others"], ("node",)) if v["others"] else \
        [n for n in targets.nodes if n not in services]
    overlap = [s.name for s in others if s in services]
    if overlap or not others:
        raise ConfigError(f"partition: 'others' must name nodes outside the target "
                          f"({', '.join(overlap) or 'none left'})")
    proxy_ip = targets.ip("proxy")
    rules = {s.container: _cut(proxy_ip, others) for s in services}
    if v["mode"] == "symmetric":
        rules.update({o.container: _cut(proxy_ip, services) for o in others})
    return _rules_plan(rules, tag, f"iptables DROP ({v['mode']}) in the nodes' netns")


def _loss_rules(percent: float) -> list[list[str]]:
    return [["-m", "statistic", "--mode", "random", "--probability", f"{percent / 100:.4f}",
             "-j", "DROP"]]


def _loss(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    if not v.get("dst"):
        return _rules_plan({s.container: _loss_rules(v["percent"]) for s in services}, tag,
                           "iptables statistic DROP")
    stat = _loss_rules(v["percent"])[0]
    rules: dict[str, list[list[str]]] = {}
    chosen = links.plan_links(targets, services, v["dst"], v["direction"])
    for link in chosen:
        rules.setdefault(link.source.container, []).extend(links.loss_rules(link, stat))
    return _rules_plan(rules, tag, "iptables statistic DROP on "
                       + ", ".join(link.describe() for link in chosen))


# --- tc --------------------------------------------------------------------------------------

def _tbf_qdisc(rate_kbit: int, burst_kbit: int, latency_ms: int) -> list[str]:
    return ["tbf", "rate", f"{rate_kbit}kbit", "burst", f"{burst_kbit}kbit",
            "latency", f"{latency_ms}ms"]


def _tc_plan(targets: Targets, services: list[Service], v: dict[str, Any], qdisc: list[str],
             what: str) -> Plan:
    """``qdisc`` as the root of each target's eth0, or toward ``dst`` only (per link);
    refused when a target already carries a qdisc of ours there (no silent replacing)."""
    if v.get("dst"):
        chosen = links.plan_links(targets, services, v["dst"], v["direction"])
        apply, undo, classes = links.tc_steps(chosen, qdisc)
        return Plan(apply, undo, f"tc {what} per destination (htb + u32): {', '.join(classes)}")
    for s in services:
        shown = in_netns(s.container, ["tc", "qdisc", "show", "dev", "eth0", "root"])
        if f" {TC_HANDLE} " in f" {shown} ":
            raise FaultError(f"{s.name}: eth0 already carries a shakedown qdisc; clear that "
                             "fault first")
    apply = [{"op": "tc_root", "container": s.container, "device": "eth0", "qdisc": qdisc}
             for s in services]
    undo = [{"op": "tc_clear", "container": s.container, "device": "eth0"} for s in services]
    return Plan(apply, undo, f"tc {what} on eth0 (egress)")


def _tbf(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    return _tc_plan(targets, services, v,
                    _tbf_qdisc(v["rate_kbit"], v["burst_kbit"], v["latency_ms"]), "tbf")


@cache
def netem_available(pid: int) -> bool:
    """Whether this kernel has sch_netem: try it on the loopback of ``pid``'s namespace."""
    base = ["nsenter", "-t", str(pid), "-n", "tc", "qdisc"]
    added = subprocess.run([*base, "add", "dev", "lo", "root", "handle", TC_HANDLE, "netem"],
                           capture_output=True, timeout=10).returncode == 0
    if added:
        subprocess.run([*base, "del", "dev", "lo", "root"], capture_output=True, timeout=10)
    return added


def _netem(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """netem where the kernel has it; else delay -> toxiproxy, loss -> iptables, rate -> tbf.
    Toward ``dst`` delay has no fallback: a toxic delays everyone who reaches the node."""
    if netem_available(container_pid(services[0].container)):
        qdisc = ["netem"]
        if v["delay_ms"]:
            qdisc += ["delay", f"{v['delay_ms']}ms", f"{v['jitter_ms']}ms"]
        for name, word in (("loss_pct", "loss"), ("duplicate_pct", "duplicate"),
                           ("corrupt_pct", "corrupt"), ("reorder_pct", "reorder")):
            if v[name]:
                qdisc += [word, f"{v[name]}%"]
        if v["rate_kbit"]:
            qdisc += ["rate", f"{v['rate_kbit']}kbit"]
        return _tc_plan(targets, services, v, qdisc, "netem")
    only_netem = ("delay_ms", "jitter_ms", "duplicate_pct", "corrupt_pct", "reorder_pct") \
        if v["dst"] else ("duplicate_pct", "corrupt_pct", "reorder_pct")
    needs_netem = [k for k in only_netem if v[k]]
    if needs_netem:
        scope = " toward dst" if v["dst"] else ""
        raise FaultError(f"netem {needs_netem[0]}{scope}: this kernel has no sch_netem module "
                         "(tc: 'Specified qdisc kind is unknown'); load it with 'modprobe "
                         "sch_netem' or run on a VM; loss and rate fall back here")
    if not (v["delay_ms"] or v["loss_pct"] or v["rate_kbit"]):
        raise ConfigError("netem: give at least one of delay_ms, loss_pct, rate_kbit, ...")
    parts: list[Plan] = []
    if v["delay_ms"]:
        toxic = {"latency_ms": v["delay_ms"], "jitter_ms": v["jitter_ms"],
                 "stream": "downstream", "toxicity": 1.0}
        parts.append(_toxic_planner("latency")(targets, services, toxic, tag))
    if v["loss_pct"]:
        parts.append(_loss(targets, services, {**v, "percent": v["loss_pct"]}, tag))
    if v["rate_kbit"]:
        parts.append(_tc_plan(targets, services, v, _tbf_qdisc(v["rate_kbit"], 32, 400),
                              "tbf"))
    return Plan([s for p in parts for s in p.apply], [s for p in parts for s in p.undo],
                "no sch_netem in this kernel: " + " + ".join(p.mechanism for p in parts))


# --- processes, chain ------------------------------------------------------------------------

def _container_planner(action: str, undo: str | None) -> Planner:
    def plan(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        do = [{"op": "container", "name": s.container, "action": action} for s in services]
        back = [{"op": "container", "name": s.container, "action": undo}
                for s in services] if undo else []
        return Plan(do, back, f"docker {action}", instant=undo is None)

    return plan


def _clock(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    return Plan([{"op": "clock_skew", "name": s.container, "offset_s": v["offset_s"]}
                 for s in services],
                [{"op": "clock_restore", "name": s.container} for s in services],
                "libfaketime (container recreated with FAKETIME)")


def _rpc(method: str, params: list[Any], undo: tuple[str, list[Any]]) -> Planner:
    def plan(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        url = targets.chain_rpc
        back = [{"op": "rpc", "url": url, "method": undo[0], "params": undo[1]}]
        return Plan([{"op": "rpc", "url": url, "method": method, "params": params}], back,
                    f"anvil {method}")

    return plan


def _reorg(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    step = {"op": "reorg", "url": targets.chain_rpc, "depth": v["depth"],
            "keep_txs": bool(v["keep_txs"])}
    return Plan([step], [], "anvil_reorg", instant=True)


def _churn_add(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    from shakedown.faults import churn

    node = churn.next_node(targets.testnet, targets.record)
    return Plan([lambda: churn.add_node(targets.testnet, targets.record, node)],
                churn.undo_add(targets.testnet, targets.record, node),
                f"new node {node.name}: NodeRegistry.addNode + addToNetwork + docker run")


def _membership(targets: Targets, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """Out of the canonical network and stopped; undo puts it back and starts it."""
    contracts = targets.record["contracts"]
    rpc = targets.chain_rpc
    apply: list[Step] = []
    undo: list[Step] = []
    for s in services:
        apply += [{"op": "canonical", "rpc_url": rpc, "contracts": contracts,
                   "node_id": s.node_id, "member": False},
                  {"op": "container", "name": s.container, "action": "stop"}]
        undo += [{"op": "canonical", "rpc_url": rpc, "contracts": contracts,
                  "node_id": s.node_id, "member": True},
                 {"op": "container", "name": s.container, "action": "start"}]
    return Plan(apply, undo, "NodeRegistry.removeFromNetwork + docker stop")


ANY = ("node", "chain", "db", "proxy", "gateway")
# A toxic kind's path -> (the roles it takes as targets, its default target).
_TOXIC_ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    "node": (("node", "chain", "db"), ""), "chain": (("chain",), "chain"),
    "db": (("node", "db"), "db")}
# Per destination: dst names nodes (node-200, node-200,node-300, nodes); direction=both also
# shapes the way back (each dst toward the targets), for a tier between two groups.
_LINK = {"dst": Param(str, ""), "direction": Param(str, "out", choices=links.DIRECTIONS)}
KINDS: dict[str, Kind] = {
    **{k: Kind(k, t.summary, _TOXIC_ROLES[t.path][0], _toxic_planner(k), toxic_params(k),
               _TOXIC_ROLES[t.path][1]) for k, t in TOXIC_KINDS.items()},
    "blackhole": Kind("blackhole", "cut nodes off from every peer and the gateway", ("node",),
                      _blackhole),
    "partition": Kind("partition", "no connections between the target group and 'others'",
                      ("node",), _partition,
                      {"others": Param(str, ""),
                       "mode": Param(str, "symmetric", choices=("symmetric", "asymmetric"))}),
    "loss": Kind("loss", "drop this share of packets in and out (or with dst only)", ANY, _loss,
                 {"percent": Param(float, None, 0.0, 100.0), **_LINK}),
    "tbf": Kind("tbf", "shape egress bandwidth with tc tbf (or toward dst only)", ANY, _tbf,
                {"rate_kbit": Param(int, None, 8, 10**8), "burst_kbit": Param(int, 32, 1, 10**6),
                 "latency_ms": Param(int, 400, 1, 60_000), **_LINK}),
    "netem": Kind("netem", "tc netem, or toward dst only (falls back where the kernel lacks "
                  "it)", ANY, _netem,
                  {"delay_ms": Param(int, 0, 0, 600_000), "jitter_ms": Param(int, 0, 0, 600_000),
                   "loss_pct": Param(float, 0.0, 0, 100), "duplicate_pct": Param(float, 0, 0, 100),
                   "corrupt_pct": Param(float, 0, 0, 100), "reorder_pct": Param(float, 0, 0, 100),
                   "rate_kbit": Param(int, 0, 0, 10**8), **_LINK}),
    "stop": Kind("stop", "docker stop; cleared by start", ANY, _container_planner("stop", "start")),
    "kill": Kind("kill", "SIGKILL the container; cleared by start", ANY,
                 _container_planner("kill", "start")),
    "pause": Kind("pause", "freeze every process (cgroup freezer); cleared by unpause", ANY,
                  _container_planner("pause", "unpause")),
    "restart": Kind("restart", "docker restart (nothing to clear)", ANY,
                    _container_planner("restart", None)),
    "db-stop": Kind("db-stop", "stop the database server; cleared by start", ("db",),
                    _container_planner("stop", "start"), default_target="db"),
    "clock-skew": Kind("clock-skew", "the target's clock runs offset_s off (libfaketime)",
                       ("node", "gateway"), _clock,
                       {"offset_s": Param(float, None, -10**8, 10**8)}),
    "mining-stop": Kind("mining-stop", "anvil stops mining; cleared by automine", ("chain",),
                        _rpc("evm_setAutomine", [False], ("evm_setAutomine", [True])),
                        default_target="chain"),
    "reorg": Kind("reorg", "anvil_reorg: new last depth blocks (keep_txs=0 drops their txs)",
                  ("chain",), _reorg, {"depth": Param(int, 1, 1, 1000),
                                       "keep_txs": Param(int, 1, 0, 1)}, "chain"),
    "churn-add": Kind("churn-add", "a node with a fresh identity joins (register, database, "
                      "proxies, start)", ("network",), _churn_add, default_target="network"),
    "churn-remove": Kind("churn-remove", "take nodes out of the canonical network and stop them",
                         ("node",), _membership),
}
