"""Clock skew: nodes run with their clocks off (libfaketime) and the network must not care.

The rule refnode follows, and the one these expectations hold it to: an envelope is accepted
(from a client, or from a peer by replication) whatever its originator timestamp; envelopes are
ordered by (originator, sequence id), never by time; the timestamp is the originator's own
clock and is signed, so every replica keeps it as it was.

    ClockSkew("node-100", +1.0)         # a fault: node-100's clock runs 1 s ahead
    ReplicasAgreeUnderSkew(("clock-skew@node-100",))  # while skewed, replication keeps up
    TimestampsShowSkew()                # each envelope carries its originator's skewed time
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import psycopg

from refnode.proto import refnode_pb2 as pb
from shakedown.scenarios.api import Fault
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.payer import run_record
from shakedown.scenarios.view import RunView, behind

KIND = "clock-skew"


def ClockSkew(target: str, offset_s: float) -> Fault:
    return Fault(KIND, target, {"offset_s": offset_s})


@dataclass(frozen=True)
class SkewWindow:
    """One node's skew as wall-clock times: unsure while applying or clearing (the node
    restarts), skewed by ``offset_s`` in between."""

    node_id: int
    label: str
    offset_s: float
    applying: tuple[float, float]
    clearing: tuple[float, float] | None  # None: never cleared


@dataclass(frozen=True)
class TimedCall:
    """One acknowledged publish to a node: its wall-clock span and the keys it was given."""

    node_id: int
    invoked: float
    completed: float
    keys: tuple[tuple[int, int], ...]


def skew_windows(events: list[dict[str, Any]]) -> list[SkewWindow]:
    """Every applied clock-skew window of a history, in wall-clock times."""
    invoked: dict[int, dict[str, Any]] = {}
    applied: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    cleared: dict[str, tuple[float, float]] = {}
    for e in events:
        if e.get("type") == "invoke":
            invoked[e["op"]] = e
        elif e.get("f") == "fault" and e.get("type") == "ok":
            start = invoked.get(e["op"], {})
            if start.get("kind") == KIND:
                applied[start["window"]] = (start, e)
        elif e.get("f") == "heal" and e.get("type") == "ok" and e.get("window") in applied:
            start = invoked.get(e["op"], e)
            cleared.setdefault(e["window"], (start["wall"], e["wall"]))
    return [SkewWindow(int(str(start["target"]).removeprefix("node-")), label,
                       float(start["params"]["offset_s"]), (start["wall"], done["wall"]),
                       cleared.get(label))
            for label, (start, done) in applied.items()]


def timed_calls(events: list[dict[str, Any]], nodes: dict[str, int]) -> list[TimedCall]:
    """Every acknowledged publish made straight to a node, with its wall-clock span."""
    invoked = {e["op"]: e for e in events if e.get("f") == "publish" and e.get("type") == "invoke"}
    out = []
    for e in events:
        start = invoked.get(e.get("op", -1))
        if e.get("f") == "publish" and e.get("type") == "ok" and start \
                and start.get("target") in nodes:
            out.append(TimedCall(nodes[start["target"]], start["wall"], e["wall"],
                                 tuple((int(a[0]), int(a[1])) for a in e.get("acks", ()))))
    return out


def expected_offset(call: TimedCall, windows: list[SkewWindow]) -> float | None:
    """The offset the node's clock had during the whole call; None when the call overlaps
    a skew being applied or cleared (which process answered is then unknown)."""
    offset = 0.0
    for w in windows:
        if w.node_id != call.node_id:
            continue
        unsure = [w.applying, *([w.clearing] if w.clearing else [])]
        if any(call.invoked <= b and call.completed >= a for a, b in unsure):
            return None
        skewed_until = w.clearing[0] if w.clearing else float("inf")
        if call.invoked >= w.applying[1] and call.completed <= skewed_until:
            offset = w.offset_s
    return offset


@dataclass
class SkewFindings:
    problems: list[str] = field(default_factory=list)
    measured: dict[str, list[float]] = field(default_factory=dict)  # "node-100 +1" -> offsets
    judged: int = 0


def judge_timestamps(calls: list[TimedCall], windows: list[SkewWindow],
                     stamps: dict[tuple[int, int], int], slack_s: float) -> SkewFindings:
    """Each acknowledged envelope's originator time, minus the offset its node had, falls
    inside the publish call's span (widened by ``slack_s``). Pure."""
    found = SkewFindings()
    for call in calls:
        offset = expected_offset(call, windows)
        if offset is None:
            continue
        for key in call.keys:
            found.judged += 1
            if key not in stamps:
                found.problems.append(f"{key[0]}:{key[1]} is not stored")
                continue
            t = stamps[key] / 1e9
            seen = t - (call.invoked + call.completed) / 2
            found.measured.setdefault(f"node-{call.node_id} {offset:+g}s", []).append(seen)
            if not call.invoked + offset - slack_s <= t <= call.completed + offset + slack_s:
                found.problems.append(
                    f"{key[0]}:{key[1]} stamped {seen:+.3f}s from its publish call; node-"
                    f"{call.node_id}'s clock was {offset:+g}s off then")
    return found


def read_stamps(dsn: str) -> dict[tuple[int, int], int]:
    """(originator, sequence id) -> originator timestamp (ns) of every stored envelope."""
    with psycopg.connect(dsn, connect_timeout=3) as conn, conn.cursor(binary=True) as cur:
        cur.execute("SELECT originator_envelope FROM gateway_envelopes_blob")
        out = {}
        for (blob,) in cur:
            unsigned = pb.UnsignedOriginatorEnvelope.FromString(
                pb.OriginatorEnvelope.FromString(bytes(blob)).unsigned_originator_envelope)
            out[(unsigned.originator_node_id, unsigned.originator_sequence_id)] = \
                unsigned.originator_ns
        return out


@dataclass(frozen=True)
class TimestampsShowSkew(Expectation):
    """Every envelope acknowledged by a node carries that node's clock: the originator time
    lies within the publish call's span shifted by the node's offset then (0 outside skew
    windows), give or take ``slack_s``; read from a canonical node's stored bytes."""

    nodes: tuple[str, ...] = ()   # these must have had envelopes judged while skewed
    slack_s: float = 0.05

    @property
    def name(self) -> str:
        return "timestamps-show-skew"

    def check(self, view: RunView) -> Check:
        windows = skew_windows(view.events)
        if not windows:
            return self.failed("no clock-skew window was applied")
        dsns = {n["name"]: n["dsn"] for n in run_record(view).get("nodes", [])}
        reader = next((n for n in sorted(view.nodes) if n in dsns), None)
        if reader is None:
            return self.failed("no canonical node's database to read timestamps from")
        found = judge_timestamps(timed_calls(view.events, view.nodes), windows,
                                 read_stamps(dsns[reader]), self.slack_s)
        medians = {k: round(statistics.median(v), 3) for k, v in sorted(found.measured.items())}
        view.metrics["skew_seen_s"] = medians
        skewed = {k for k in medians if not k.endswith(" +0s")}
        details = {"judged": found.judged, "median_seen_s": medians, "read_from": reader}
        if found.problems:
            return self.failed(f"{len(found.problems)} of {found.judged} timestamps do not show "
                               f"their node's clock: {found.problems[0]}",
                               problems=found.problems[:20], **details)
        unjudged = set(self.nodes) - {k.split()[0] for k in skewed}
        if unjudged:
            return self.failed(f"{sorted(unjudged)[0]} acknowledged nothing while skewed: "
                               "nothing to judge", **details)
        return self.passed(f"{found.judged} timestamps show their node's clock; median seen: "
                           + ", ".join(f"{k} {v:+.3f}" for k, v in medians.items()), **details)


@dataclass(frozen=True)
class ReplicasAgreeUnderSkew(Expectation):
    """While all of ``windows`` hold (the clocks disagree most), replicas agree: some sample
    shows every node holding everything acknowledged ``lag_s`` before it. A node that refuses
    envelopes for their timestamps never lets that happen."""

    windows: tuple[str, ...]
    lag_s: float = 3.0

    @property
    def name(self) -> str:
        return f"replicas-agree-under-skew({','.join(self.windows)})"

    def check(self, view: RunView) -> Check:
        starts, ends = [], []
        for label in self.windows:
            w = view.window(label)
            if w is None or w.error:
                return self.failed(f"{label} was not applied: "
                                   f"{w.error if w else 'not in the history'}")
            starts.append(w.start)
            ends.append(w.end if w.end is not None else view.heal)
        start, end = max(starts), min(ends)
        if end - start < self.lag_s + 1:
            return self.failed(f"the windows overlap only {max(0.0, end - start):.1f}s")
        last_lag: dict[str, dict[int, str]] = {}
        for s in view.samples_between(start + self.lag_s, end):
            wanted = view.acked_max(s.t - self.lag_s)
            lag = {n: behind(s.clock(n), wanted) for n in view.nodes}
            last_lag = {n: v for n, v in lag.items() if v}
            if not last_lag:
                view.metrics["skew_agreed_after_s"] = round(s.t - start, 3)
                return self.passed(f"{s.t - start:.1f}s into the skew every node held "
                                   f"everything acknowledged {self.lag_s:g}s before ({wanted})")
        where = "; ".join(f"{n} behind {v}" for n, v in sorted(last_lag.items()))
        return self.failed(f"replicas never agreed while the clocks were skewed "
                           f"({start:.1f}s-{end:.1f}s) on what was acknowledged {self.lag_s:g}s "
                           f"earlier; last sample: {where or 'none'}", lag=last_lag)
