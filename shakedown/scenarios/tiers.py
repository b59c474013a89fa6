"""Latency tiers (Logos' gossip latency gradient): nodes in groups, links between groups as
good as the farther group's tier, shaped per destination; propagation lag reported per tier.

Each tier names a link quality: bandwidth and loss work on every kernel (tc tbf and iptables'
statistic match toward the destinations); delay needs netem (a real kernel: the VM lane).
Faults are built for each direction separately (never ``direction=both``), so the same
schedule applies to Docker nodes and to SSH hosts.

    faults = tier_faults({"A": ("node-100",), "B": ("node-200",), "C": ("node-300",)},
                         {"B": Link(rate_kbit=1000, loss_pct=1), "C": Link(rate_kbit=100,
                                                                           loss_pct=3)})
    TierLag(TIERS, windows=..., max_lag_s=10)
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from shakedown.scenarios.api import Fault
from shakedown.scenarios.expectations import Check, Expectation, _window_or_fail
from shakedown.scenarios.view import Call, RunView, Sample


@dataclass(frozen=True)
class Link:
    """What a link between groups suffers: rate (kbit/s), loss (%), delay (ms, netem only)."""

    rate_kbit: int = 0
    loss_pct: float = 0.0
    delay_ms: int = 0


# On the real-kernel VM lane: Logos' 10 / 100 / 300 ms.
DELAY_TIERS = {"A": Link(delay_ms=10), "B": Link(delay_ms=100), "C": Link(delay_ms=300)}


def link_tier(a: str, b: str, order: tuple[str, ...]) -> str:
    """The tier of the link between groups ``a`` and ``b``: the farther one's."""
    return max(a, b, key=order.index)


def tier_faults(groups: Mapping[str, tuple[str, ...]], links: Mapping[str, Link]
                ) -> tuple[Fault, ...]:
    """Per source node and link tier: one fault per mechanism toward every node of the groups
    (its own included, when it has several nodes) that the tier's link quality joins."""
    order = tuple(groups)
    toward: dict[tuple[str, str], list[str]] = {}  # (source group, tier) -> destination nodes
    for src in order:
        for dst in order:
            tier = link_tier(src, dst, order)
            if tier in links and (src != dst or len(groups[src]) > 1):  # a node never to itself
                toward.setdefault((src, tier), []).extend(groups[dst])
    faults = []
    for (src, tier), dests in toward.items():
        link = links[tier]
        for target in groups[src]:  # one source node per fault: SSH hosts take one target each
            dst = ",".join(d for d in dests if d != target)
            if link.rate_kbit:
                faults.append(Fault("tbf", target, {"rate_kbit": link.rate_kbit, "dst": dst}))
            if link.loss_pct:
                faults.append(Fault("loss", target, {"percent": link.loss_pct, "dst": dst}))
            if link.delay_ms:
                faults.append(Fault("netem", target, {"delay_ms": link.delay_ms, "dst": dst}))
    return tuple(faults)


def arrival_lags(calls: list[Call], samples: list[Sample], origin_of: Mapping[int, str],
                 receivers: list[str], start: float, acked_before: float, until: float
                 ) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], int]]:
    """For envelopes acknowledged in [start, acked_before): per (originator node, receiver),
    how long after the ack the receiver's clock first covered it (sampled), and how many had
    not arrived by ``until``. Pure."""
    series: dict[tuple[str, int], tuple[list[float], list[int]]] = {}
    for r in receivers:
        for o in origin_of:
            times: list[float] = []
            seqs: list[int] = []
            for s in samples:
                clock = s.clock(r)
                if clock is not None:
                    times.append(s.t)
                    seqs.append(max(clock.get(o, 0), seqs[-1] if seqs else 0))
            series[(r, o)] = (times, seqs)
    lags: dict[tuple[str, str], list[float]] = {}
    missing: dict[tuple[str, str], int] = {}
    for c in calls:
        if not start <= c.completed < acked_before:
            continue
        for o, seq in c.acks:
            for r in receivers:
                if origin_of.get(o) in (None, r):
                    continue
                times, seqs = series[(r, o)]
                k = bisect.bisect_left(times, c.completed)
                k += bisect.bisect_left(seqs[k:], seq)
                key = (origin_of[o], r)
                if k < len(times) and times[k] < until:
                    lags.setdefault(key, []).append(times[k] - c.completed)
                else:
                    missing[key] = missing.get(key, 0) + 1
    return lags, missing


def lag_by_tier(lags: Mapping[tuple[str, str], list[float]],
                groups: Mapping[str, tuple[str, ...]], digits: int = 2
                ) -> dict[str, dict[str, float | int]]:
    """``arrival_lags``' lags gathered by the tier of each (originator, receiver) link: p50,
    p95, min and max in seconds and how many envelopes, per tier. Pure."""
    order = tuple(groups)
    group_of = {n: g for g, ns in groups.items() for n in ns}
    per_tier: dict[str, list[float]] = {}
    for (o, r), values in lags.items():
        per_tier.setdefault(link_tier(group_of[o], group_of[r], order), []).extend(values)
    return {t: {"p50_s": round(statistics.median(v), digits),
                "p95_s": round(statistics.quantiles(v, n=20)[-1] if len(v) > 1 else v[0], digits),
                "min_s": round(min(v), digits), "max_s": round(max(v), digits),
                "envelopes": len(v)}
            for t, v in sorted(per_tier.items())}


@dataclass(frozen=True)
class TierLag(Expectation):
    """While ``window`` holds (the tier faults' first), every envelope acknowledged up to
    ``max_lag_s`` before its clear reaches every other node within ``max_lag_s``; the
    propagation lag (sampled every 0.5 s) is reported per link tier as p50 / p95 / max."""

    groups: Mapping[str, tuple[str, ...]]
    window: str
    max_lag_s: float = 10.0

    @property
    def name(self) -> str:
        return f"tier-lag({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window_or_fail(self, view, self.window)
        if bad:
            return bad
        assert w is not None
        end = w.end if w.end is not None else view.heal
        group_of = {n: g for g, ns in self.groups.items() for n in ns}
        origin_of = {view.nodes[n]: n for n in group_of if n in view.nodes}
        lags, missing = arrival_lags(view.calls, view.samples, origin_of,
                                     sorted(origin_of.values()), w.start,
                                     end - self.max_lag_s, end)
        report = lag_by_tier(lags, self.groups)
        view.metrics["tier_lag"] = report
        late = {f"{o}->{r}": round(max(v), 2) for (o, r), v in lags.items()
                if max(v) > self.max_lag_s}
        never = {f"{o}->{r}": n for (o, r), n in missing.items()}
        shown = ", ".join(f"tier {t} p50 {r['p50_s']}s p95 {r['p95_s']}s max {r['max_s']}s"
                          for t, r in report.items())
        details = {"tiers": report, "late": late, "never_arrived": never}
        if never or late:
            worst = next(iter(never or late))
            what = f"{never[worst]} envelopes never arrived" if never else \
                f"took {late[worst]}s"
            return self.failed(f"{worst}: {what} within {self.max_lag_s:g}s while the tiers "
                               f"held ({shown or 'no arrivals'})", **details)
        if not report:
            return self.failed("nothing was acknowledged while the tiers held", **details)
        return self.passed(f"propagation lag while the tiers held: {shown}", **details)
