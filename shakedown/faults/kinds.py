"""The fault catalogue, one table for both runtimes: each kind's parameters, targets and plan.

Plans are data (``shakedown.faults.kind``): the steps that apply the fault and those that undo
it, so the ledger holds the undo before anything happens. Where the runtimes differ (how
traffic toward a peer looks, where the toxiproxy is), the planner asks the ``View``; the
executors turn the steps into commands. Parameters carry their unit in their name
(``latency_ms``, ``rate_kbit``); the few that exist on one runtime only say so.

    kind = KINDS["latency"]
    values = kind.parse({"latency_ms": "200"}, "docker")
    plan = kind.plan(view, view.resolve("node-200", kind.roles), values, tag="1a2b3c4d")
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from shakedown.errors import ConfigError, FaultError
from shakedown.faults import netshell
from shakedown.faults.kind import Kind, Param, Plan, Planner, Service, Step, View
from shakedown.faults.names import TOXIC_PREFIX

SSH = ("ssh",)
DOCKER = ("docker",)
_UNIT = re.compile(r"^[A-Za-z0-9@._:\\-]+$")
_DEVICE = re.compile(r"^[A-Za-z0-9._@-]{1,15}$")
_PROXY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


# --- toxics ----------------------------------------------------------------------------------

_STREAM = {"stream": Param(str, "downstream", choices=("downstream", "upstream", "both")),
           "toxicity": Param(float, 1.0, 0.0, 1.0)}
# toxic -> (toxiproxy type, {our parameter: (toxiproxy attribute, Param)})
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
# kind -> (its toxic, the path it bends: node (peers and gateway to the node), db (node to
# its database) or chain (calls to the chain RPC), summary)
TOXIC_KINDS: dict[str, tuple[str, str, str]] = {
    **{k: (k, "node", f"toxiproxy {t} on the proxy in front of the target")
       for k, (t, _) in _TOXICS.items()},
    "chain-latency": ("latency", "chain", "latency on every call to the chain RPC"),
    "db-latency": ("latency", "db", "latency between nodes and their databases"),
    "db-reset": ("reset-peer", "db", "reset connections between nodes and their databases"),
}
# Services someone else deployed: the toxiproxy API port on the host and the proxy's name.
_AT_PROXY = {"proxy": Param(str, "", runtimes=SSH),
             "api_port": Param(int, 0, 0, 65535, runtimes=SSH)}


def toxic_params(kind: str) -> dict[str, Param]:
    return {**{ours: p for ours, (_, p) in _TOXICS[TOXIC_KINDS[kind][0]][1].items()}, **_STREAM}


def toxics(kind: str, values: Mapping[str, Any], tag: str) -> list[dict[str, Any]]:
    """The toxiproxy toxics (API bodies) of one fault: one per stream, ``sd-<tag>-<stream>``."""
    toxic_type, attrs = _TOXICS[TOXIC_KINDS[kind][0]]
    streams = ["downstream", "upstream"] if values["stream"] == "both" else [values["stream"]]
    attributes = {attr: values[ours] for ours, (attr, _) in attrs.items()}
    return [{"name": f"{TOXIC_PREFIX}{tag}-{stream}", "type": toxic_type, "stream": stream,
             "toxicity": values["toxicity"], "attributes": attributes} for stream in streams]


def _toxic_planner(kind: str) -> Planner:
    path = TOXIC_KINDS[kind][1]

    def plan(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        if v.get("proxy"):  # on a host someone else deployed: the proxy named by hand
            if not _PROXY.match(v["proxy"]) or not v.get("api_port"):
                raise ConfigError(f"proxy={v['proxy']!r}: give a toxiproxy proxy name and its "
                                  "api_port=PORT")
            where = [(s.at, f"http://127.0.0.1:{v['api_port']}", v["proxy"]) for s in services]
        else:
            where = [p for s in services for p in view.toxiproxies(s, path)]
        apply: list[Step] = []
        undo: list[Step] = []
        for at, api, proxy in dict.fromkeys(where):
            for toxic in toxics(kind, v, tag):
                apply.append({"op": "toxic_add", "at": at, "api": api, "proxy": proxy, **toxic})
                undo.append({"op": "toxic_remove", "at": at, "api": api, "proxy": proxy,
                             "name": toxic["name"]})
        proxies = ", ".join(dict.fromkeys(p for _, _, p in where))
        return Plan(apply, undo, f"toxiproxy {_TOXICS[TOXIC_KINDS[kind][0]][0]} on {proxies}")

    return plan


# --- iptables --------------------------------------------------------------------------------

def _rules_plan(rules: dict[str, list[list[str]]], tag: str, mechanism: str) -> Plan:
    """Rules per place -> add them all; undo removes this tag's rules at every place."""
    apply = [{"op": "sh", "at": at, "cmd": netshell.ipt_add(tag, r)} for at, r in rules.items()
             if r]
    undo = [{"op": "sh", "at": at, "cmd": netshell.ipt_remove(tag)} for at in rules]
    return Plan(apply, undo, mechanism)


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


def _is_network(item: str) -> bool:
    return bool(re.match(r"^[0-9.]+(/\d+)?$|^[0-9a-fA-F:]+:[0-9a-fA-F:/]*$", item.strip()))


def _peers(view: View, raw: str, what: str) -> tuple[list[Service], list[str]]:
    """Names (nodes, groups) and addresses in one comma list, checked."""
    items = [s.strip() for s in raw.split(",") if s.strip()]
    addresses = [i for i in items if _is_network(i)]
    names = [i for i in items if i not in addresses]
    try:
        services = view.resolve(",".join(names), ("node", "host")) if names else []
    except ConfigError as e:
        raise ConfigError(f"{what}={raw!r}: neither IPv4 addresses nor services here ({e})") \
            from None
    return services, networks(",".join(addresses), what)


def _blackhole(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """Cut the targets off from every other node and from their own clients, either way."""
    rules: dict[str, list[list[str]]] = {}
    for s in services:
        peers = [n for n in view.nodes if n not in services and n.at != s.at]
        rules.setdefault(s.at, []).extend([
            *view.keep(s, v), *(r for p in peers for r in netshell.drops(view.toward(s, p))),
            *view.inbound(s)])
    return _rules_plan(rules, tag, "iptables DROP of the target's peers and clients")


def _partition(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """The targets vs ``others`` (nodes) and ``peers`` (addresses): traffic across is dropped
    where it starts (``direction``), and on the other side too when ``mode`` is symmetric."""
    others, addresses = _peers(view, f"{v.get('others', '')},{v.get('peers', '')}", "others")
    if not others and not addresses:  # every node elsewhere
        others = [n for n in view.nodes if all(n != s and n.at != s.at for s in services)]
        if not others:
            raise ConfigError("partition: others=NODE[,NODE...] (or peers=ADDR[,...] on SSH "
                              "hosts) names what to cut off")
    overlap = [s.name for s in others if s in services]
    if overlap:
        raise ConfigError(f"partition: 'others' must name nodes outside the target "
                          f"({', '.join(overlap)})")
    direction = v.get("direction", "both")
    rules: dict[str, list[list[str]]] = {}
    for s in services:
        ends = [e for o in others for e in view.toward(s, o)] + [(a, 0) for a in addresses]
        rules.setdefault(s.at, []).extend([*view.keep(s, v),
                                           *netshell.drops(ends, direction=direction)])
    if v.get("mode") == "symmetric":
        for o in others:
            ends = [e for s in services for e in view.toward(o, s)]
            rules.setdefault(o.at, []).extend([*view.keep(o, v), *netshell.drops(ends)])
    cut = ", ".join([*(o.name for o in others), *addresses])
    how = v.get("mode") or direction
    return _rules_plan(rules, tag, f"iptables DROP ({how}) with {cut}")


def _statistic(percent: float) -> list[str]:
    return ["-m", "statistic", "--mode", "random", "--probability", f"{percent / 100:.4f}",
            "-j", "DROP"]


def _loss(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    stat = _statistic(v["percent"])
    if not v.get("dst"):
        return _rules_plan({s.at: [*view.keep(s, v), stat] for s in services}, tag,
                           "iptables statistic DROP")
    rules: dict[str, list[list[str]]] = {}
    chosen = _links(view, services, v)
    for src, _, ends in chosen:
        rules.setdefault(src.at, []).extend(netshell.drops(ends, then=stat))
    return _rules_plan(rules, tag, "iptables statistic DROP on "
                       + ", ".join(_describe(link) for link in chosen))


# --- tc --------------------------------------------------------------------------------------

Link = tuple[Service, list[str], list[tuple[str, int]]]  # source, what it reaches, endpoints


def _links(view: View, services: list[Service], v: dict[str, Any]) -> list[Link]:
    """Per destination: what each target sends toward ``dst`` (nodes, groups or addresses);
    ``direction=both`` also each destination node toward the targets, a tier between groups."""
    dests, addresses = _peers(view, v["dst"], "dst")
    links: list[Link] = []
    for s in services:
        to = [d for d in dests if d != s]
        ends = [e for d in to for e in view.toward(s, d)] + [(a, 0) for a in addresses]
        if ends:
            links.append((s, [*(d.name for d in to), *addresses], ends))
    if v.get("direction") == "both":
        for d in dests:
            back = [s for s in services if s != d and s.role == "node"]
            if d not in services and back:
                links.append((d, [s.name for s in back],
                              [e for s in back for e in view.toward(d, s)]))
    if not links:
        raise ConfigError(f"dst={v['dst']}: no destination other than the target itself")
    return links


def _describe(link: Link) -> str:
    return f"{link[0].name}->{'+'.join(link[1])}"


def _tc_plan(view: View, services: list[Service], v: dict[str, Any], qdisc: list[str],
             what: str) -> Plan:
    """``qdisc`` as the root of each target's device, or toward ``dst`` only (per link); a
    device that already carries a qdisc of ours is refused, never silently replaced."""
    apply: list[Step] = []
    undo: list[Step] = []
    notes: dict[str, Any] = {}
    if not v.get("dst"):
        for s in services:
            dev = _device(v.get("device") or view.device(s, []))
            sh = netshell.whole_device(dev, qdisc)
            apply.append({"op": "sh", "at": s.at, "precheck": f"{sh.read}\n{sh.precheck}",
                          "cmd": "\n".join(sh.apply)})
            undo.append({"op": "sh", "at": s.at, "cmd": "\n".join(sh.undo)})
            notes["device"] = dev
        return Plan(apply, undo, f"tc {what} on {notes['device']} (egress)", notes=notes)
    classes = []
    for link in _links(view, services, v):
        src, _, ends = link
        dev = _device(v.get("device") or view.device(src, [a for a, _ in ends]))
        minor = view.free_class(src, dev)
        matches = [netshell.dst_port_match(a.split("/")[0], p) if p else
                   netshell.dst_match(a if "/" in a else f"{a}/32") for a, p in ends]
        sh = netshell.per_destination(dev, minor, qdisc, matches)
        apply.append({"op": "sh", "at": src.at, "precheck": f"{sh.read}\n{sh.precheck}",
                      "cmd": "\n".join([sh.read, *sh.apply])})
        undo.append({"op": "sh", "at": src.at, "cmd": "\n".join(sh.undo)})
        classes.append(f"{_describe(link)} {sh.cls}")
        notes.update(device=dev, **{"class": sh.cls}, minor=minor)
    return Plan(apply, undo, f"tc {what} per destination (htb + u32): {', '.join(classes)}",
                notes=notes)


def _device(name: str) -> str:
    if not _DEVICE.match(name):
        raise ConfigError(f"device={name!r}: not a network device name")
    return name


def _tbf_qdisc(rate_kbit: int, burst_kbit: int, latency_ms: int) -> list[str]:
    return ["tbf", "rate", f"{rate_kbit}kbit", "burst", f"{burst_kbit}kbit",
            "latency", f"{latency_ms}ms"]


def _tbf(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    return _tc_plan(view, services, v,
                    _tbf_qdisc(v["rate_kbit"], v["burst_kbit"], v["latency_ms"]), "tbf")


def _netem_qdisc(v: dict[str, Any]) -> list[str]:
    qdisc = ["netem"]
    if v["delay_ms"]:
        qdisc += ["delay", f"{v['delay_ms']}ms", *([f"{v['jitter_ms']}ms"] if v["jitter_ms"]
                                                  else [])]
    elif v["jitter_ms"] or v["reorder_pct"]:
        raise ConfigError("netem: jitter_ms and reorder_pct need delay_ms")
    for name, word in (("loss_pct", "loss"), ("duplicate_pct", "duplicate"),
                       ("corrupt_pct", "corrupt"), ("reorder_pct", "reorder")):
        if v[name]:
            qdisc += [word, f"{v[name]:g}%"]
    if v["rate_kbit"]:
        qdisc += ["rate", f"{v['rate_kbit']}kbit"]
    if v.get("limit"):
        qdisc += ["limit", str(v["limit"])]
    if len(qdisc) == 1:
        raise ConfigError("netem: give at least one of delay_ms, loss_pct, duplicate_pct, "
                          "corrupt_pct, rate_kbit")
    return qdisc


def _netem(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    """netem where the kernel has it; else delay -> toxiproxy, loss -> iptables, rate -> tbf.
    Toward ``dst`` delay has no fallback: a toxic delays everyone who reaches the node."""
    if view.has_netem(services[0]):
        return _tc_plan(view, services, v, _netem_qdisc(v), "netem")
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
        parts.append(_toxic_planner("latency")(view, services, toxic, tag))
    if v["loss_pct"]:
        parts.append(_loss(view, services, {**v, "percent": v["loss_pct"]}, tag))
    if v["rate_kbit"]:
        parts.append(_tc_plan(view, services, v, _tbf_qdisc(v["rate_kbit"], 32, 400), "tbf"))
    return Plan([s for p in parts for s in p.apply], [s for p in parts for s in p.undo],
                "no sch_netem in this kernel: " + " + ".join(p.mechanism for p in parts))


# --- processes, clocks, chain ----------------------------------------------------------------

def _unit(s: Service, v: dict[str, Any]) -> str:
    unit = str(v.get("unit") or s.unit)
    if unit and not _UNIT.match(unit):
        raise ConfigError(f"unit={unit!r}: not a systemd unit name")
    return unit


def _service_planner(action: str, undo: str | None) -> Planner:
    def plan(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        do = [{"op": "service", "at": s.at, "unit": _unit(s, v), "action": action}
              for s in services]
        back = [{**step, "action": undo} for step in do] if undo else []
        return Plan(do, back, f"{action} {', '.join(s.name for s in services)}",
                    instant=undo is None)

    return plan


def _clock(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    steps = [{"at": s.at, "unit": _unit(s, v)} for s in services]
    return Plan([{"op": "clock", **s, "offset_s": v["offset_s"]} for s in steps],
                [{"op": "unclock", **s} for s in steps],
                f"libfaketime, {v['offset_s']:+g} s, the service restarted")


def _rpc(method: str, params: list[Any], undo: tuple[str, list[Any]]) -> Planner:
    def plan(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
        at, url = view.chain_rpc()
        call = {"op": "rpc", "at": at, "url": url}
        return Plan([{**call, "method": method, "params": params}],
                    [{**call, "method": undo[0], "params": undo[1]}], f"anvil {method}")

    return plan


def _reorg(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    step = {"op": "reorg", "at": "", "url": view.controller_rpc(), "depth": v["depth"],
            "keep_txs": bool(v["keep_txs"])}
    return Plan([step], [], "anvil_reorg", instant=True)


# Docker only: these need the Docker testnet's record and engine (``shakedown.faults.docker``).
ChurnPlanner = Callable[[View, list[Service], dict[str, Any], str], Plan]


def _churn_add(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    return view.churn_add()  # type: ignore[attr-defined, no-any-return]


def _churn_remove(view: View, services: list[Service], v: dict[str, Any], tag: str) -> Plan:
    return view.churn_remove(services)  # type: ignore[attr-defined, no-any-return]


# --- the catalogue ---------------------------------------------------------------------------

HOST = ("host",)
ANY = ("node", "chain", "db", "proxy", "gateway", "host", "service")  # service: by unit
# A toxic kind's path -> (the roles it takes as targets, its default target).
_TOXIC_ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    "node": (("node", "chain", "db", "host"), ""), "chain": (("chain", "node", "host"), "chain"),
    "db": (("node", "db", "host"), "db")}
# Per destination: dst names nodes (node-200, node-200,node-300, nodes) or addresses;
# direction=both also shapes the way back (each dst node toward the targets): a tier.
_LINK = {"dst": Param(str, ""), "direction": Param(str, "out", choices=("out", "both"),
                                                   runtimes=DOCKER),
         "device": Param(str, "", runtimes=SSH)}
_UNIT_PARAM = {"unit": Param(str, "", runtimes=SSH)}
_SSH_PORT = {"ssh_port": Param(int, 22, 1, 65535, runtimes=SSH)}
KINDS: dict[str, Kind] = {
    **{k: Kind(k, summary, _TOXIC_ROLES[path][0], _toxic_planner(k),
               {**toxic_params(k), **_AT_PROXY}, _TOXIC_ROLES[path][1])
       for k, (_, path, summary) in TOXIC_KINDS.items()},
    "blackhole": Kind("blackhole", "cut the target off from every peer and its clients (on a "
                      "host: everything but SSH)", ("node", "host"), _blackhole, _SSH_PORT),
    "partition": Kind("partition", "no traffic between the target and 'others' (nodes) or "
                      "'peers' (addresses)", ("node", "host"), _partition,
                      {"others": Param(str, ""), "peers": Param(str, "", runtimes=SSH),
                       "mode": Param(str, "symmetric", choices=("symmetric", "asymmetric"),
                                     runtimes=DOCKER),
                       "direction": Param(str, "both", choices=("both", "in", "out"),
                                          runtimes=SSH), **_SSH_PORT}),
    "loss": Kind("loss", "drop this share of packets in and out (or with dst only)", ANY, _loss,
                 {"percent": Param(float, None, 0.0, 100.0),
                  **{k: p for k, p in _LINK.items() if k != "device"}, **_SSH_PORT}),
    "tbf": Kind("tbf", "shape egress bandwidth with tc tbf (or toward dst only)", ANY, _tbf,
                {"rate_kbit": Param(int, None, 8, 10**8), "burst_kbit": Param(int, 32, 1, 10**6),
                 "latency_ms": Param(int, 400, 1, 60_000), **_LINK}),
    "netem": Kind("netem", "tc netem, or toward dst only (falls back where the kernel lacks "
                  "it)", ANY, _netem,
                  {"delay_ms": Param(int, 0, 0, 600_000), "jitter_ms": Param(int, 0, 0, 600_000),
                   "loss_pct": Param(float, 0.0, 0, 100), "duplicate_pct": Param(float, 0, 0, 100),
                   "corrupt_pct": Param(float, 0, 0, 100), "reorder_pct": Param(float, 0, 0, 100),
                   "rate_kbit": Param(int, 0, 0, 10**8),
                   "limit": Param(int, 0, 0, 10**7, runtimes=SSH), **_LINK}),
    "stop": Kind("stop", "stop the service; cleared by start", ANY,
                 _service_planner("stop", "start"), _UNIT_PARAM),
    "kill": Kind("kill", "SIGKILL the service; cleared by start", ANY,
                 _service_planner("kill", "start"), _UNIT_PARAM),
    "pause": Kind("pause", "freeze every process of the service; cleared by unpause", ANY,
                  _service_planner("pause", "unpause"), _UNIT_PARAM),
    "restart": Kind("restart", "restart the service (nothing to clear)", ANY,
                    _service_planner("restart", None), _UNIT_PARAM),
    "db-stop": Kind("db-stop", "stop the database server; cleared by start", ("db",),
                    _service_planner("stop", "start"), default_target="db", runtimes=DOCKER),
    "clock-skew": Kind("clock-skew", "the target's clock runs offset_s off (libfaketime)",
                       ("node", "gateway", "host", "service"), _clock,
                       {"offset_s": Param(float, None, -10**8, 10**8), **_UNIT_PARAM}),
    "mining-stop": Kind("mining-stop", "anvil stops mining; cleared by automine", ("chain",),
                        _rpc("evm_setAutomine", [False], ("evm_setAutomine", [True])),
                        default_target="chain"),
    "reorg": Kind("reorg", "anvil_reorg: new last depth blocks (keep_txs=0 drops their txs)",
                  ("chain",), _reorg, {"depth": Param(int, 1, 1, 1000),
                                       "keep_txs": Param(int, 1, 0, 1)}, "chain"),
    "churn-add": Kind("churn-add", "a node with a fresh identity joins (register, database, "
                      "proxies, start)", ("network",), _churn_add, default_target="network",
                      runtimes=DOCKER),
    "churn-remove": Kind("churn-remove", "take nodes out of the canonical network and stop them",
                         ("node",), _churn_remove, runtimes=DOCKER),
}
