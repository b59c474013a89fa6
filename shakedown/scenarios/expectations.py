"""Expectations: data in a scenario, checkers over the run's view that return data.

Each expectation has a ``name`` that names what it promises (``catches-up(stop@node-300)``)
and ``check(view) -> Check``; a failing check says what it saw, where, and the numbers. A
check never raises for a property that does not hold; the runner turns an exception into a
failed check that says it could not decide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shakedown.scenarios.checker import Store, acked_from, check_set, unsure_from
from shakedown.scenarios.view import RunView, behind

PASS, FAIL, SKIP = "pass", "fail", "skip"
SHOW = 5  # sequence ids named per node and originator


@dataclass(frozen=True)
class Check:
    """The result of one expectation: pass / fail / skip, one line, and the numbers."""

    name: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def valid(self) -> bool | None:
        return {PASS: True, FAIL: False}.get(self.status)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "valid": self.valid,
                "message": self.message, "details": self.details,
                "duration_s": round(self.duration_s, 3)}


class Expectation:
    """One promise of a scenario. Subclasses are frozen dataclasses."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    def check(self, view: RunView) -> Check:
        raise NotImplementedError

    def passed(self, message: str, **details: Any) -> Check:
        return Check(self.name, PASS, message, details)

    def failed(self, message: str, **details: Any) -> Check:
        return Check(self.name, FAIL, message, details)


def _window_or_fail(exp: Expectation, view: RunView, label: str):  # type: ignore[no-untyped-def]
    w = view.window(label)
    if w is None:
        return None, exp.failed(f"fault window {label!r} never opened (not in the history)")
    if w.error:
        return None, exp.failed(f"fault {label} could not be applied: {w.error}")
    return w, None


@dataclass(frozen=True)
class PublishesAcked(Expectation):
    """Every publish call (of ``label``, if given) was acknowledged; at least ``min_acked``."""

    label: str = ""
    min_acked: int = 1

    @property
    def name(self) -> str:
        return f"publishes-acked({self.label})" if self.label else "publishes-acked"

    def check(self, view: RunView) -> Check:
        calls = [c for c in view.calls if not self.label or c.label.startswith(self.label)]
        bad = [c for c in calls if c.outcome != "ok"]
        acked = sum(len(c.acks) for c in calls)
        details = {"calls": len(calls), "failed_calls": len(bad), "acked": acked}
        if bad:
            errors = Counter(f"{c.error} via {c.target}" for c in bad)
            top = ", ".join(f"{why} x{n}" for why, n in errors.most_common(3))
            return self.failed(f"{len(bad)} of {len(calls)} publish calls were not acknowledged "
                               f"({top})", **details)
        if acked < self.min_acked:
            return self.failed(f"only {acked} envelopes acknowledged, wanted >= "
                               f"{self.min_acked}", **details)
        return self.passed(f"{len(calls)} publish calls, {acked} envelopes acknowledged",
                           **details)


@dataclass(frozen=True)
class Converges(Expectation):
    """After the final heal every node holds every acknowledged envelope within ``within_s``
    and all vector clocks are equal."""

    within_s: float = 15.0

    @property
    def name(self) -> str:
        return "converges"

    def check(self, view: RunView) -> Check:
        wanted = view.acked_max(float("inf"))
        settle = next((e for e in reversed(view.events) if e.get("f") == "settle"
                       and e.get("type") != "invoke"), None)
        last = view.samples[-1] if view.samples else None
        if settle is None or last is None:
            return self.failed("no settle observation in the history")
        clocks = {n: last.clock(n) for n in view.nodes}
        lagging = {n: behind(c, wanted) for n, c in clocks.items() if behind(c, wanted)}
        differ = set_differences(view.stores, list(view.nodes), acked_digests(view))
        details = {"wanted": wanted, "after_s": settle.get("after_s"), "clocks": clocks,
                   "differences": differ[:20]}
        if settle.get("type") != "ok" or lagging:
            where = "; ".join(f"{n} behind {lag}" for n, lag in sorted(lagging.items()))
            unequal = "" if lagging else f"clocks differ: {clocks}"
            return self.failed(f"not converged within {self.within_s:g}s of the heal: "
                               f"{where or unequal}", **details)
        if differ:  # equal tops are not equal sets: a hole below the top, other bytes
            return self.failed(f"envelope sets differ after the heal: {'; '.join(differ[:3])}"
                               + (f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""),
                               **details)
        if float(settle["after_s"]) > self.within_s:
            return self.failed(f"converged only {settle['after_s']:.1f}s after the heal "
                               f"(wanted <= {self.within_s:g}s)", **details)
        return self.passed(f"{len(view.nodes)} nodes hold equal envelope sets up to {wanted} "
                           f"{float(settle['after_s']):.1f}s after the heal", **details)


@dataclass(frozen=True)
class CatchesUp(Expectation):
    """After ``window`` is cleared, every node (or ``nodes``) holds every envelope acked
    before the clear within ``within_s``."""

    window: str
    within_s: float = 15.0
    nodes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"catches-up({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        wanted = view.acked_max(end)
        nodes = list(self.nodes) or list(view.nodes)
        hit = view.first_caught_up(wanted, end, nodes)
        differ = set_differences(view.stores, nodes, acked_digests(view, before=end), upto=wanted)
        details = {"cleared_at_s": round(end, 3), "wanted": wanted, "differences": differ[:20]}
        if differ:  # the clock reached the top, yet an envelope below it is missing or other
            return self.failed(f"not every envelope acked before the clear is there: "
                               f"{'; '.join(differ[:3])}"
                               + (f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""),
                               **details)
        if hit is None or hit.t - end > self.within_s:
            last = view.sample_at(end + self.within_s)
            lag = {n: behind(last.clock(n) if last else None, wanted) for n in nodes}
            lag = {n: v for n, v in lag.items() if v}
            where = "; ".join(f"{n} behind {v}" for n, v in sorted(lag.items()))
            late = f" (caught up only after {hit.t - end:.1f}s)" if hit else ""
            return self.failed(f"not caught up within {self.within_s:g}s of the clear: "
                               f"{where or 'no sample'}{late}", **details)
        return self.passed(f"{', '.join(nodes)} caught up {hit.t - end:.1f}s after the clear",
                           caught_up_after_s=round(hit.t - end, 3), **details)


def acked_digests(view: RunView, before: float = float("inf")) -> dict[tuple[int, int], str]:
    """(originator, sequence id) -> envelope digest of every ack of calls completed before
    ``before`` (scenario time)."""
    keys = {k for c in view.calls if c.completed < before for k in c.acks}
    return {a.key: a.digest for a in acked_from(view.events) if a.key in keys}


def set_differences(stores: Mapping[str, Store], nodes: Iterable[str],
                    acked: Mapping[tuple[int, int], str],
                    upto: Mapping[int, int] | None = None) -> list[str]:
    """What each of ``nodes`` lacks, or holds with other bytes, per originator (pure).

    The reference is every sequence id 1..top of each originator (top: ``upto``'s, else the
    highest any node holds or was acked), with the acknowledged digest, else the digest most
    nodes hold. Every store is a reference; only ``nodes`` are judged.

    Example: ``["node-200: originator 100 lacks sequence 7"]``
    """
    nodes = list(nodes)
    top: dict[int, int] = dict(upto or {})
    if upto is None:
        for key in [*acked, *(k for st in stores.values() for k in st)]:
            top[key[0]] = max(top.get(key[0], 0), key[1])
    judged = [n for n in nodes if n in stores]
    found = [f"{n}: its envelopes could not be read" for n in nodes if n not in stores]
    for o, high in sorted(top.items()):
        lacks: dict[str, list[int]] = {n: [] for n in judged}
        other: dict[str, list[int]] = {n: [] for n in judged}
        for s in range(1, high + 1):
            want = acked.get((o, s)) or _majority_digest(stores, (o, s))
            for node in judged:
                have = stores[node].get((o, s))
                if have is None:
                    lacks[node].append(s)
                elif want is not None and have[0] != want:
                    other[node].append(s)
        for node in judged:
            found += [f"{node}: originator {o} {what} sequence {_ids(seqs)}"
                      for what, seqs in (("lacks", lacks[node]),
                                         ("holds other bytes for", other[node])) if seqs]
    return found


def _majority_digest(stores: Mapping[str, Store], key: tuple[int, int]) -> str | None:
    held = Counter(st[key][0] for st in stores.values() if key in st)
    return held.most_common(1)[0][0] if held else None


def _ids(seqs: list[int]) -> str:
    shown = ", ".join(map(str, seqs[:SHOW]))
    return shown + (f" (and {len(seqs) - SHOW} more)" if len(seqs) > SHOW else "")


@dataclass(frozen=True)
class NotReplicatedDuring(Expectation):
    """While ``window`` holds, no other node receives envelopes that ``node`` acknowledged
    after the fault was in force (and ``node`` did acknowledge some)."""

    window: str
    node: str
    grace_s: float = 0.5

    @property
    def name(self) -> str:
        return f"not-replicated-during({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        origin = view.nodes.get(self.node) or int(self.node.removeprefix("node-"))
        allowed = view.acked_max(w.start, {origin}, invoked=True).get(origin, 0)
        during = view.acks_between(w.start, end).get(origin, 0)
        if not during:
            return self.failed(f"{self.node} acknowledged nothing while {self.window} held: "
                               "the check would be vacuous")
        leaks = []
        for s in view.samples_between(w.start + self.grace_s, end):
            for other in view.nodes:
                clock = s.clock(other)
                if other != self.node and clock and clock.get(origin, 0) > allowed:
                    leaks.append(f"{other} held {origin}:{clock[origin]} at {s.t:.1f}s")
        details = {"allowed_up_to": allowed, "acked_during": during}
        if leaks:
            return self.failed(f"{self.node}'s envelopes replicated while {self.window} held "
                               f"(only up to {origin}:{allowed} may): {leaks[0]}",
                               leaks=leaks[:10], **details)
        return self.passed(f"{during} envelopes acked by {self.node} stayed there while "
                           f"{self.window} held", **details)


@dataclass(frozen=True)
class ReplicatesDuring(Expectation):
    """While ``window`` holds, replication continues: for each originator that acked
    envelopes then, every other node's clock of it advances (slowly is fine)."""

    window: str
    receivers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"replicates-during({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        inside = view.samples_between(w.start, end + 0.01)
        if len(inside) < 2:
            return self.failed(f"fewer than two samples while {self.window} held")
        first, last = inside[0], inside[-1]
        active = [o for o, n in view.acks_between(w.start, end).items() if n]
        stalled = []
        for node in self.receivers or tuple(view.nodes):
            a, b = first.clock(node) or {}, last.clock(node) or {}
            for o in active:
                if view.nodes.get(node) != o and b.get(o, 0) <= a.get(o, 0):
                    stalled.append(f"{node} stuck at {o}:{b.get(o, 0)}")
        if not active:
            return self.failed(f"no envelopes were acked while {self.window} held")
        if stalled:
            return self.failed(f"replication stalled while {self.window} held: "
                               f"{'; '.join(stalled)}", stalled=stalled)
        return self.passed(f"every node kept receiving from {sorted(active)} while "
                           f"{self.window} held")


@dataclass(frozen=True)
class ThroughputRecovers(Expectation):
    """After ``window`` is cleared, the ack rate gets back to ``ratio`` of the rate before."""

    window: str
    ratio: float = 0.7
    span_s: float = 3.0

    @property
    def name(self) -> str:
        return f"throughput-recovers({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        before = sum(view.acks_between(max(0.0, w.invoked - self.span_s), w.invoked).values())
        after_end = min(end + 1.0 + self.span_s, view.workload_end)
        span_after = after_end - (end + 1.0)
        if span_after <= 0.5:
            return self.failed(f"no traffic after {self.window} cleared to measure")
        after = sum(view.acks_between(end + 1.0, after_end).values())
        rate_before = before / self.span_s
        rate_after = after / span_after
        details = {"before_per_s": round(rate_before, 1), "after_per_s": round(rate_after, 1)}
        if rate_after < self.ratio * rate_before:
            return self.failed(f"{rate_after:.1f} acks/s after the clear vs {rate_before:.1f} "
                               f"before (wanted >= {self.ratio:.0%})", **details)
        return self.passed(f"{rate_after:.1f} acks/s after vs {rate_before:.1f} before",
                           **details)


@dataclass(frozen=True)
class AckedDuring(Expectation):
    """While ``window`` holds, each of ``nodes`` acknowledges at least ``at_least`` envelopes."""

    window: str
    nodes: tuple[str, ...]
    at_least: int = 1

    @property
    def name(self) -> str:
        return f"acked-during({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        got = view.acks_between(w.start, end)
        short = {n: got.get(view.nodes.get(n, 0), 0) for n in self.nodes
                 if got.get(view.nodes.get(n, 0), 0) < self.at_least}
        if short:
            return self.failed(f"acked fewer than {self.at_least} while {self.window} held: "
                               f"{short}", acked=got)
        return self.passed(f"acked while {self.window} held: "
                           f"{ {n: got.get(view.nodes.get(n, 0), 0) for n in self.nodes} }")


@dataclass(frozen=True)
class TargetsCarried(Expectation):
    """Each of ``targets`` (gateways or nodes) carried at least one acknowledged publish."""

    targets: tuple[str, ...]

    @property
    def name(self) -> str:
        return "targets-carried"

    def check(self, view: RunView) -> Check:
        acked = Counter(c.target for c in view.calls if c.outcome == "ok")
        idle = [t for t in self.targets if not acked.get(t)]
        details = {"acked_calls": dict(acked)}
        if idle:
            return self.failed(f"carried no acknowledged publish: {', '.join(idle)}", **details)
        return self.passed("acked calls per target: "
                           + ", ".join(f"{t} {acked[t]}" for t in self.targets), **details)


@dataclass(frozen=True)
class NodesServing(Expectation):
    """Every node answers its gRPC health check after the run (none crashed or got stuck)."""

    @property
    def name(self) -> str:
        return "nodes-serving"

    def check(self, view: RunView) -> Check:
        health = next((e for e in reversed(view.events) if e.get("f") == "health"
                       and e.get("type") != "invoke"), None)
        if health is None:
            return self.failed("no health observation in the history")
        down = {n: h for n, h in health.get("nodes", {}).items() if h != "serving"}
        if down:
            return self.failed("not serving: " + "; ".join(f"{n}: {h}" for n, h in down.items()))
        return self.passed(f"{len(health.get('nodes', {}))} nodes serving")


@dataclass(frozen=True)
class SustainableRate(Expectation):
    """Load progression: the highest rate sustained (acked, replicated) is at least
    ``at_least`` envelopes/s. Reported as the metric ``sustainable_rate``."""

    at_least: float = 20.0

    @property
    def name(self) -> str:
        return "sustainable-rate"

    def check(self, view: RunView) -> Check:
        steps = view.events_of("ramp")
        sustained = 0.0
        stopped = None
        for s in steps:
            if not s.get("sustained"):
                stopped = s
                break
            sustained = float(s["rate"])
        view.metrics["sustainable_rate"] = sustained
        view.metrics["ramp"] = [{k: s[k] for k in ("rate", "acked", "failed", "achieved",
                                                   "caught_up", "sustained")} for s in steps]
        why = ""
        if stopped is not None:
            reasons = []
            if stopped.get("failed"):
                reasons.append(f"{stopped['failed']} failed")
            if not stopped.get("caught_up"):
                reasons.append("replication not caught up")
            reasons.append(f"acked {stopped.get('acked')} at {stopped.get('achieved')}/s")
            planned = int(stopped.get("planned") or 0)
            if planned and int(stopped.get("sent", 0)) < 0.9 * planned:
                reasons.append(f"the client sent only {stopped.get('sent')} of {planned} "
                               "(the load generator is the limit here)")
            why = f"; {float(stopped['rate']):g}/s not sustained: {', '.join(reasons)}"
        elif steps:
            why = "; every step sustained (raise the top rate to find the limit)"
        message = f"sustainable rate {sustained:g} envelopes/s{why}"
        if sustained < self.at_least:
            return self.failed(f"{message} (wanted >= {self.at_least:g}/s)",
                               sustainable_rate=sustained)
        return self.passed(message, sustainable_rate=sustained)


@dataclass(frozen=True)
class HistorySet(Expectation):
    """The history set checker over every canonical node's final store (see checker.py)."""

    @property
    def name(self) -> str:
        return "history-set"

    def check(self, view: RunView) -> Check:
        result = check_set(acked_from(view.events), unsure_from(view.events), view.stores)
        view.metrics["acknowledged"] = result.details.get("acknowledged", 0)
        view.metrics["unsure"] = result.details.get("unsure_outcome", {})
        return Check(self.name, PASS if result.valid else FAIL, result.summary, result.details)


@dataclass(frozen=True)
class VectorClocksAgree(Expectation):
    """At the end every node's stored envelopes give the same vector clock, gap-free, and it
    covers every acknowledged envelope (read from the final stores, not the nodes' API)."""

    @property
    def name(self) -> str:
        return "vector-clocks-agree"

    def check(self, view: RunView) -> Check:
        if not view.stores:
            return self.failed("no node store was read")
        wanted = view.acked_max(float("inf"))
        clocks: dict[str, dict[int, int]] = {}
        gaps: list[str] = []
        for node, store in sorted(view.stores.items()):
            per: dict[int, list[int]] = {}
            for o, s in store:
                per.setdefault(o, []).append(s)
            clocks[node] = {o: max(seqs) for o, seqs in sorted(per.items())}
            gaps += [f"{node} originator {o}: {len(seqs)} stored, max {max(seqs)}"
                     for o, seqs in per.items() if len(seqs) != max(seqs)]
        first_node, first = next(iter(clocks.items()))
        differ = [f"{n} {c} vs {first_node} {first}" for n, c in clocks.items() if c != first]
        short = behind(first, wanted)
        details = {"clocks": {n: {str(o): s for o, s in c.items()} for n, c in clocks.items()},
                   "acked_max": wanted}
        if differ:
            return self.failed(f"vector clocks differ: {differ[0]}", **details)
        if gaps:
            return self.failed(f"sequence gaps: {gaps[0]}", **details)
        if short:
            return self.failed(f"clock {first} lacks acknowledged envelopes: {short}", **details)
        return self.passed(f"{len(clocks)} nodes agree on {first}", **details)
