"""Perform one scheduled event on the run's testnet and say what it did, for the model.

Faults go through the adapter (``faults.ChaosFaults``) with a TTL and land in the history as
the scenario driver writes them (``fault`` / ``heal`` with the window name), so the report
shades them; publishes go through the workload's ``Publisher`` (every call in the history);
chain operations and gateways are ``action`` events. An outcome is ``ok``, ``fail`` (it did
not happen: the injector rolled back, or the chain reverted) or ``unsure``.

    outcome = perform(stage, event)      # Outcome(event, "ok", acks=[...], unsure=[...])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from refnode.envelopes import Signer
from shakedown.chaos.faults import ChaosFaults
from shakedown.chaos.model import Ack, Unsure
from shakedown.chaos.schedule import Event, node_id_of, node_name
from shakedown.chaos.snapshot import Snapshotter
from shakedown.errors import ChainError, ShakedownError
from shakedown.keys import gateway as gateway_key
from shakedown.keys import payer as payer_key
from shakedown.scenarios.api import Publish
from shakedown.scenarios.history import History
from shakedown.scenarios.provision import RunTestnet
from shakedown.scenarios.workload import Publisher, Router, publisher_for
from shakedown.traffic import NodeTarget
from shakedown.waiting import wait_for

TTL_MARGIN_S = 300.0
TOXICS = {"latency": ("latency", "latency_ms"), "bandwidth": ("bandwidth", "rate_kbps"),
          "reset": ("reset-peer", None), "timeout": ("timeout", None)}


@dataclass(frozen=True)
class Outcome:
    event: Event
    status: str                           # ok | fail | unsure
    error: str = ""
    acks: tuple[Ack, ...] = ()
    unsure: tuple[Unsure, ...] = ()
    node: tuple[str, int] | None = None   # churn-add: the node that joined


@dataclass
class Stage:
    """What events act on; shared by the events of a step (each touches its own targets)."""

    net: RunTestnet
    record: dict[str, Any]
    history: History
    faults: ChaosFaults
    snapshotter: Snapshotter
    stop: threading.Event
    publishers: list[Publisher]
    ttl_s: float
    nodes: dict[str, NodeTarget] = field(default_factory=dict)   # every node that exists
    gateways: dict[str, str] = field(default_factory=dict)       # live gateway -> endpoint
    gateway_payers: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)        # scheduled -> actual name
    open: dict[str, Any] = field(default_factory=dict)           # window -> ledger entry
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def name(self, scheduled: str) -> str:
        return ",".join(self.aliases.get(n, n) for n in scheduled.split(","))

    def chain(self) -> Any:
        from shakedown.chain.ops import Chain
        from shakedown.chain.records import ContractAddresses
        from shakedown.keys import admin_account

        return Chain.connect(self.record["chain"]["rpc"],
                             ContractAddresses.from_dict(self.record["contracts"]),
                             admin_account())


class _Tee:
    """The history as one burst's publisher sees it: every event passes, results are kept."""

    def __init__(self, history: History):
        self.history = history
        self.results: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def invoke(self, f: str, **value: Any) -> int:
        return self.history.invoke(f, **value)

    def complete(self, f: str, op: int, type_: str, **value: Any) -> dict[str, Any]:
        if f == "publish":
            with self._lock:
                self.results.append((type_, value))
        return self.history.complete(f, op, type_, **value)


# --- publishes ----------------------------------------------------------------------------

def _burst(stage: Stage, ev: Event, router: Router, spec: Publish, payer: str,
           signer: Signer | None, unsure_at: int) -> Outcome:
    tee = _Tee(stage.history)
    pub = publisher_for(spec, router, cast(History, tee))
    if signer is not None:
        pub.payers = [signer]
    with stage._lock:
        stage.publishers.append(pub)
    pub.run()
    acks, unsure = [], []
    for kind, value in tee.results:
        if kind == "ok":
            acks += [Ack(int(a[0]), int(a[1]), str(a[2]), str(a[3]), payer, ev.n)
                     for a in value.get("acks", ())]
        else:
            unsure += [Unsure(str(p), payer, unsure_at, ev.n) for p in value.get("payloads", ())]
    status = "ok" if acks or not unsure else "unsure"
    return Outcome(ev, status, "" if not unsure else f"{len(unsure)} envelopes not acked",
                   tuple(acks), tuple(unsure))


def _spec(ev: Event, via: str, to: tuple[str, ...]) -> Publish:
    count, rate = int(ev.params["count"]), float(ev.params["rate"])
    return Publish(rate=rate, duration_s=count / rate + 15.0, batch=int(ev.params["batch"]),
                   payers=1, via=via, to=to, max_envelopes=count, label=f"chaos-{ev.n}")


def _publish(stage: Stage, ev: Event) -> Outcome:
    target = stage.name(ev.target)
    node = stage.nodes.get(target)
    if node is None:
        return Outcome(ev, "fail", f"{target} does not exist (its churn failed)")
    key = payer_key(int(ev.params["payer"]))
    return _burst(stage, ev, Router({target: node}), _spec(ev, "node", (target,)),
                  key.address.lower(), Signer(bytes(key.key)), node.node_id)


def _publish_gateway(stage: Stage, ev: Event) -> Outcome:
    gateway = ev.target
    if gateway not in stage.gateways:
        return Outcome(ev, "fail", f"{gateway} is not live")
    ask = stage.name(ev.params["node"]) if ev.params.get("node") else ""
    router = Router(dict(stage.nodes))
    router.add_gateway(gateway, stage.gateways[gateway])
    at = stage.nodes[ask].node_id if ask in stage.nodes else 0
    return _burst(stage, ev, router, _spec(ev, "gateway", (ask,) if ask in stage.nodes else ()),
                  stage.gateway_payers[gateway], None, at)


# --- faults -------------------------------------------------------------------------------

def apply_fault(stage: Stage, ev: Event, kind: str, target: str, params: Mapping[str, Any],
                ttl: float) -> Any:
    """Apply through the adapter, recorded as the driver records faults."""
    op = stage.history.invoke("fault", window=ev.window, kind=kind, target=target,
                              params=dict(params), event=ev.n)
    try:
        entry = stage.faults.apply(kind, target, params, ttl=ttl)
    except ShakedownError as e:
        stage.history.complete("fault", op, "fail", window=ev.window, error=str(e))
        raise
    stage.open[ev.window] = entry
    stage.history.complete("fault", op, "ok", window=ev.window, entry=entry.id, tag=entry.tag)
    return entry


def clear_window(stage: Stage, window: str) -> bool:
    """Clear one open window; False when it was not open (its apply had failed)."""
    entry = stage.open.pop(window, None)
    if entry is None:
        return False
    op = stage.history.invoke("heal", window=window)
    try:
        stage.faults.clear(entry)
    except ShakedownError as e:
        stage.history.complete("heal", op, "fail", window=window, error=str(e))
        raise
    stage.history.complete("heal", op, "ok", window=window)
    return True


def _held(stage: Stage, ev: Event, kind: str, target: str, params: Mapping[str, Any],
          hold_s: float) -> Outcome:
    """A timed fault: applied, held (a Ctrl-C cuts the hold short), cleared."""
    apply_fault(stage, ev, kind, target, params, ttl=hold_s + TTL_MARGIN_S)
    try:
        stage.stop.wait(hold_s)
    finally:
        clear_window(stage, ev.window)
    return Outcome(ev, "ok")


def _open(stage: Stage, ev: Event, kind: str, params: Mapping[str, Any] | None = None
          ) -> Outcome:
    apply_fault(stage, ev, kind, stage.name(ev.target), params or {}, ttl=stage.ttl_s)
    return Outcome(ev, "ok")


def _close(stage: Stage, ev: Event) -> Outcome:
    cleared = [w for w in ev.closes if clear_window(stage, w)]
    return Outcome(ev, "ok", "" if cleared else "nothing was open to clear")


def _partition(stage: Stage, ev: Event) -> Outcome:
    shape = ev.params["shape"]
    if shape == "node":
        return _open(stage, ev, "blackhole")
    mode = "symmetric" if shape == "groups" else "asymmetric"
    return _open(stage, ev, "partition", {"others": stage.name(ev.params["others"]),
                                           "mode": mode})


def _toxic(stage: Stage, ev: Event) -> Outcome:
    kind, attribute = TOXICS[ev.name]
    params = {attribute: ev.params[attribute]} if attribute else {"timeout_ms": 0}
    return _held(stage, ev, kind, stage.name(ev.target), params, float(ev.params["hold_s"]))


def _timed(kind: str, params: Callable[[Event], dict[str, Any]] = lambda ev: {}
           ) -> Callable[[Stage, Event], Outcome]:
    def run(stage: Stage, ev: Event) -> Outcome:
        hold = float(ev.params.get("hold_s", ev.params.get("delay_s", 0.0)))
        return _held(stage, ev, kind, stage.name(ev.target), params(ev), hold)
    return run


def _churn_add(stage: Stage, ev: Event) -> Outcome:
    chain = stage.chain()
    before = {n.node_id for n in chain.all_nodes()}
    apply_fault(stage, ev, "churn-add", "network", {}, ttl=stage.ttl_s)
    joined = sorted({n.node_id for n in chain.all_nodes()} - before)
    if not joined:
        return Outcome(ev, "unsure", "churn-add registered no node")
    node_id = joined[-1]
    name = node_name(node_id)
    grpc = _published_port(stage.net.model.container(name))
    dsn = urlsplit(stage.record["db"]["dsn"])
    stage.snapshotter.add_node(name, urlunsplit(dsn._replace(path=f"/node_{node_id}")), grpc)
    stage.nodes[name] = NodeTarget(grpc, node_id)
    stage.aliases[ev.target] = name
    return Outcome(ev, "ok", node=(name, node_id))


def _published_port(container: str) -> str:
    import docker

    ports = docker.from_env(timeout=30).containers.get(container).ports
    for bindings in ports.values():
        for b in bindings or []:
            return f"127.0.0.1:{b['HostPort']}"
    raise ShakedownError(f"{container}: no published port")


# --- gateways and the chain -------------------------------------------------------------

def _action(stage: Stage, ev: Event, run: Callable[[], object]) -> Outcome:
    """A chain or gateway operation as an ``action`` in the history; a revert is a definite
    ``fail``, a timeout or lost connection ``unsure``."""
    op = stage.history.invoke("action", kind=ev.name, target=ev.target, params=dict(ev.params),
                              event=ev.n)
    try:
        run()
    except Exception as e:
        status = "fail" if isinstance(e, ChainError) else "unsure"
        stage.history.complete("action", op, "fail" if status == "fail" else "info",
                               kind=ev.name, target=ev.target, error=str(e)[:300])
        return Outcome(ev, status, f"{type(e).__name__}: {e}"[:300])
    stage.history.complete("action", op, "ok", kind=ev.name, target=ev.target)
    return Outcome(ev, "ok")


def _gateway_add(stage: Stage, ev: Event) -> Outcome:
    from shakedown.client import GatewayClient
    from shakedown.ports import free_port

    def start() -> None:
        endpoint = stage.net.start_gateway(ev.target, int(ev.params["key"]), free_port())

        def serving() -> bool:
            with GatewayClient(endpoint, timeout=2) as client:
                return bool(client.health().serving)

        wait_for(serving, bool, timeout=30, interval=0.2, what=f"{ev.target} health")
        stage.gateways[ev.target] = endpoint
        stage.gateway_payers[ev.target] = gateway_key(int(ev.params["key"])).address.lower()

    return _action(stage, ev, start)


def _gateway_remove(stage: Stage, ev: Event) -> Outcome:
    if ev.target not in stage.gateways:
        return Outcome(ev, "fail", f"{ev.target} is not live")

    def remove() -> None:
        name = ev.target
        stage.gateways.pop(name)
        stage.net.remove_gateway(name)

    return _action(stage, ev, remove)


def _rates(stage: Stage, ev: Event) -> Outcome:
    from shakedown.scenarios.actions import set_rates

    params = {"start_in_s": ev.params["start_in_s"], "message_fee": ev.params["message_fee"]}
    return _action(stage, ev, partial(set_rates, stage.record, params))


def _deposit(stage: Stage, ev: Event) -> Outcome:
    key = payer_key(node_id_of(ev.target.replace("payer-", "node-")))
    return _action(stage, ev, lambda: stage.chain().fund_payer(key, int(ev.params["amount"])))


def _withdraw(stage: Stage, ev: Event) -> Outcome:
    key = payer_key(node_id_of(ev.target.replace("payer-", "node-")))
    return _action(stage, ev, lambda: stage.chain().request_withdrawal(
        key, int(ev.params["amount"])))


PERFORM: dict[str, Callable[[Stage, Event], Outcome]] = {
    "publish": _publish, "publish-gateway": _publish_gateway,
    "stop": lambda s, e: _open(s, e, "stop"), "kill": lambda s, e: _open(s, e, "kill"),
    "start": _close, "heal": _close,
    "pause": _timed("pause"), "restart": _timed("stop"),
    "partition": _partition,
    "latency": _toxic, "bandwidth": _toxic, "reset": _toxic, "timeout": _toxic,
    "clock-skew": _timed("clock-skew", lambda ev: {"offset_s": ev.params["offset_s"]}),
    "churn-add": _churn_add, "churn-remove": lambda s, e: _open(s, e, "churn-remove"),
    "gateway-add": _gateway_add, "gateway-remove": _gateway_remove,
    "db-stop": _timed("db-stop"),
    "reorg": lambda s, e: _instant(s, e, "reorg", {"depth": e.params["depth"], "keep_txs": 1}),
    "mining-stop": _timed("mining-stop"),
    "rates": _rates, "deposit": _deposit, "withdraw": _withdraw,
}


def _instant(stage: Stage, ev: Event, kind: str, params: Mapping[str, Any]) -> Outcome:
    window = ev.window or f"{kind}@{ev.target}#e{ev.n}"
    marked = Event(ev.n, ev.step, ev.name, ev.target, ev.params, window)
    apply_fault(stage, marked, kind, ev.target, params, ttl=TTL_MARGIN_S)
    stage.open.pop(window, None)  # nothing stays behind to clear
    return Outcome(ev, "ok")


def perform(stage: Stage, ev: Event) -> Outcome:
    """Run one event; an error becomes a ``fail`` outcome naming it (never raised)."""
    try:
        return PERFORM[ev.name](stage, ev)
    except ShakedownError as e:
        return Outcome(ev, "fail", str(e)[:300])
    except Exception as e:  # a bug of ours or a client error: the run goes on and says so
        return Outcome(ev, "fail", f"{type(e).__name__}: {e}"[:300])
