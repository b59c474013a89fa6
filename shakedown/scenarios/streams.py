"""Replication streams under stress (the dmsg failure tests): who watches them, who stalls
them, and what must hold.

    StatusWatcher(duration_s=40)          # every node's GetStatus, each interval, in the history
    SlowSubscriber("node-100", start_s=4, stall_s=20)   # subscribes, stops reading, resumes
    SlowSubscriberIsolated()              # it stalled nobody; it fell behind; it got everything
    StreamsClosed("pause@node-300")       # a vanished node's streams closed on the other side
    Reconnects("pause@node-300")          # ... and opened again by themselves once it is back
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

import grpc

from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from shakedown.client import NodeClient
from shakedown.scenarios.agents import Agent, AgentContext
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.view import RunView, Window


def _streams(items: Any) -> list[list[Any]]:
    return [[s.peer_node_id, s.state, round(s.age_s, 2), round(s.idle_s, 2), s.envelopes]
            for s in items]


@dataclass(frozen=True)
class StatusWatcher(Agent):
    """Every ``interval_s``, each node's GetStatus as one ``status`` event: the streams it
    serves and follows (peer, state, age, idle, envelopes), its calls by method and code, how
    often a subscriber fell behind; or the error when it did not answer."""

    interval_s: float = 0.5
    label: str = "status"

    def run(self, ctx: AgentContext) -> None:
        nodes = [(n["name"], NodeClient(n["grpc"], timeout=2)) for n in ctx.record["nodes"]]
        try:
            k = 0
            while ctx.until(self.end_s):
                for name, client in nodes:
                    ctx.history.info("status", node=name, **read_status(client))
                k += 1
                if not ctx.sleep_until(self.start_s + k * self.interval_s):
                    return
        finally:
            for _, client in nodes:
                client.close()


def read_status(client: NodeClient) -> dict[str, Any]:
    """One node's status as history data (``error`` when it did not answer)."""
    try:
        s = client.status()
    except grpc.RpcError as e:
        return {"error": e.code().name if isinstance(e, grpc.Call) else type(e).__name__}
    return {"serving": _streams(s.serving), "following": _streams(s.following),
            "behind": s.subscribers_behind,
            "calls": {f"{c.method} {c.code}": c.count for c in s.calls}}


@dataclass(frozen=True)
class SlowSubscriber(Agent):
    """Subscribe to ``target``'s own envelopes from the start (with a small HTTP/2 window),
    read one message, read nothing for ``stall_s``, then read on until ``duration_s`` ends.
    Records the stall (``slow`` events) and, at its end, the node's status and every
    sequence id received (as ranges)."""

    target: str = "node-100"
    stall_s: float = 20.0
    label: str = "slow"

    def run(self, ctx: AgentContext) -> None:
        if not ctx.sleep_until(self.start_s):
            return
        node = ctx.node(self.target)
        originator, got, outcome = int(node["node_id"]), [], "ended"
        options = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", 1 << 26)]
        with grpc.insecure_channel(node["grpc"], options=options) as channel:
            call = rpc.ReplicationApiStub(channel).SubscribeEnvelopes(
                pb.SubscribeEnvelopesRequest(originator_node_ids=[originator]),
                timeout=self.duration_s)
            ended = threading.Timer(max(0.1, self.end_s - ctx.elapsed()), call.cancel)
            ended.start()
            try:
                for k, message in enumerate(call):
                    got += [pb.UnsignedOriginatorEnvelope.FromString(
                        e.unsigned_originator_envelope).originator_sequence_id
                        for e in message.envelopes]
                    if k == 0:
                        self._stall(ctx, node)
            except grpc.RpcError as e:
                outcome = e.code().name if isinstance(e, grpc.Call) else type(e).__name__
            finally:
                ended.cancel()
        ctx.history.info("slow", label=self.label, phase="done", target=self.target,
                         outcome=outcome, received=len(got), ranges=_ranges(got))

    def _stall(self, ctx: AgentContext, node: dict[str, Any]) -> None:
        ctx.history.info("slow", label=self.label, phase="stall", target=self.target)
        ctx.stop.wait(self.stall_s)
        with NodeClient(node["grpc"], timeout=5) as client:
            ctx.history.info("slow", label=self.label, phase="resume", target=self.target,
                             **read_status(client))


def _ranges(ids: list[int]) -> list[list[int]]:
    """[[first, last], ...] of runs of consecutive ids, in the order received."""
    out: list[list[int]] = []
    for i in ids:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _status_samples(view: RunView, node: str) -> list[tuple[float, dict[str, Any]]]:
    return [(e["t"] - view.t0, e) for e in view.events_of("status") if e.get("node") == node]


def open_streams(sample: dict[str, Any], peer: int) -> list[str]:
    """The streams with ``peer`` a status sample shows up: served, or followed and streaming."""
    served = [f"serving {s[1]} (idle {s[3]:g}s)" for s in sample.get("serving", [])
              if s[0] == peer]
    followed = [f"following {s[1]} (idle {s[3]:g}s)" for s in sample.get("following", [])
                if s[0] == peer and s[1] == "streaming"]
    return served + followed


def _window(exp: Expectation, view: RunView, label: str) -> tuple[Window | None, Check | None]:
    w = view.window(label)
    if w is None:
        return None, exp.failed(f"fault window {label!r} never opened (not in the history)")
    if w.error:
        return None, exp.failed(f"fault {label} could not be applied: {w.error}")
    return w, None


@dataclass(frozen=True)
class StreamsClosed(Expectation):
    """While ``window`` holds (its target frozen or cut off, its sockets still open), every
    other node closes its streams with the target within ``within_s``: the one it serves the
    target and the one it follows the target by. Both must have been up before."""

    window: str
    within_s: float = 12.0

    @property
    def name(self) -> str:
        return f"streams-closed({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window(self, view, self.window)
        if w is None:
            return bad  # type: ignore[return-value]
        peer = view.nodes.get(w.target)
        if peer is None:
            return self.failed(f"{w.target} is not a canonical node of this run")
        end = w.end if w.end is not None else float("inf")
        problems, closed_after = [], {}
        for node in sorted(n for n in view.nodes if n != w.target):
            samples = [(t, s) for t, s in _status_samples(view, node) if "error" not in s]
            before = [s for t, s in samples if t < w.invoked]
            if not before or len(open_streams(before[-1], peer)) < 2:
                problems.append(f"{node} did not have both streams with {w.target} up before "
                                f"the window (last seen: {before[-1] if before else 'nothing'})")
                continue
            during = [(t, s) for t, s in samples if w.start <= t < end]
            gone = next((t for t, s in during if not open_streams(s, peer)), None)
            if gone is None or gone - w.start > self.within_s:
                late = [(t, s) for t, s in during if t - w.start <= self.within_s]
                t, s = late[-1] if late else (w.start, {})
                problems.append(f"{node} still had {w.target}'s streams open {t - w.start:.1f}s "
                                f"into {self.window}: {', '.join(open_streams(s, peer))}"
                                + ("" if gone is None else f" (closed only after "
                                                           f"{gone - w.start:.1f}s)"))
                continue
            closed_after[node] = round(gone - w.start, 2)
        if problems:
            return self.failed("; ".join(problems), closed_after_s=closed_after)
        return self.passed(f"{', '.join(closed_after)} closed {w.target}'s streams "
                           + ", ".join(f"{t:.1f}s" for t in closed_after.values())
                           + f" into {self.window} (limit {self.within_s:g}s)",
                           closed_after_s=closed_after)


@dataclass(frozen=True)
class Reconnects(Expectation):
    """After ``window`` (from its clear; ``after_start``: from its start, for a restart) the
    streams between the target and every other node come back by themselves within
    ``within_s``: each other node follows the target (streaming) and serves it again, on
    streams opened since the fault began (a stream retried while its target was frozen
    comes up once it answers)."""

    window: str
    within_s: float = 15.0
    after_start: bool = False

    @property
    def name(self) -> str:
        return f"reconnects({self.window})"

    def check(self, view: RunView) -> Check:
        w, bad = _window(self, view, self.window)
        if w is None:
            return bad  # type: ignore[return-value]
        peer = view.nodes.get(w.target)
        since = w.start if self.after_start else w.end
        if peer is None or since is None:
            return self.failed(f"{self.window}: no canonical target, or never cleared")
        problems, back_after = [], {}
        for node in sorted(n for n in view.nodes if n != w.target):
            back = None
            for t, s in _status_samples(view, node):
                if t < since or "error" in s:
                    continue
                fresh = [x for x in s.get("serving", []) + s.get("following", [])
                         if x[0] == peer and x[1] in ("live", "catching-up", "streaming")
                         and x[2] <= t - w.start]  # opened since the fault began
                kinds = {"serving" if x in s.get("serving", []) else "following" for x in fresh}
                if kinds == {"serving", "following"}:
                    back = t - since
                    break
            if back is None or back > self.within_s:
                seen = [s for t, s in _status_samples(view, node) if t >= since]
                moment = "start" if self.after_start else "clear"
                problems.append(f"{node}'s streams with {w.target} not back within "
                                f"{self.within_s:g}s of the {moment} of {self.window} (last "
                                f"seen: {open_streams(seen[-1], peer) if seen else 'no status'})")
                continue
            back_after[node] = round(back, 2)
        if problems:
            return self.failed("; ".join(problems), back_after_s=back_after)
        return self.passed(f"{', '.join(back_after)} stream with {w.target} again "
                           + ", ".join(f"{t:.1f}s" for t in back_after.values())
                           + f" after {self.window}", back_after_s=back_after)


@dataclass(frozen=True)
class SlowSubscriberIsolated(Expectation):
    """While the slow subscriber ``label`` read nothing, its node kept acknowledging publishes
    (no gap between acks longer than ``max_gap_s``), every other node held the node's
    envelopes acked ``lag_s`` earlier, and the node reported the subscriber fell behind its
    buffer (the limit was reached, so the check is not vacuous); once it read again, it got
    every envelope from 1 on, in order, without a gap or a repeat."""

    label: str = "slow"
    max_gap_s: float = 5.0
    lag_s: float = 5.0

    @property
    def name(self) -> str:
        return f"slow-subscriber-isolated({self.label})"

    def check(self, view: RunView) -> Check:
        mine = {str(e.get("phase")): e for e in view.events_of("slow")
                if e.get("label") == self.label}
        if not {"stall", "resume", "done"} <= set(mine):
            return self.failed(f"the slow subscriber {self.label} did not stall, resume and "
                               f"finish (saw: {sorted(mine)})")
        target = mine["stall"]["target"]
        node_id = view.nodes.get(target)
        if node_id is None:
            return self.failed(f"{target} is not a canonical node of this run")
        begin, end = mine["stall"]["t"] - view.t0, mine["resume"]["t"] - view.t0
        acks = sorted(c.completed for c in view.calls
                      if begin <= c.completed < end and any(o == node_id for o, _ in c.acks))
        edges = [begin, *acks, end]
        gap = max(b - a for a, b in itertools.pairwise(edges))
        problems = []
        if gap > self.max_gap_s:
            problems.append(f"{target} acknowledged nothing for {gap:.1f}s while the subscriber "
                            f"stalled ({len(acks)} acks in {end - begin:.1f}s): its publish path "
                            "waited for the subscriber")
        worst: dict[str, float] = {}
        for s in view.samples_between(begin + self.lag_s, end):
            wanted = view.acked_max(s.t - self.lag_s, {node_id}).get(node_id, 0)
            for other in (n for n in view.nodes if n != target):
                have = (s.clock(other) or {}).get(node_id, 0)
                if have < wanted:
                    worst[other] = max(worst.get(other, 0), wanted - have)
        if worst:
            problems.append("other subscribers fell behind while it stalled: " + ", ".join(
                f"{n} up to {k} envelopes short of what {target} acked {self.lag_s:g}s before"
                for n, k in sorted(worst.items())))
        behind = int(mine["resume"].get("behind", 0))
        if not behind:
            problems.append(f"{target} never reported the subscriber behind its buffer "
                            f"(status: {mine['resume'].get('error') or 'behind 0'})")
        ranges = mine["done"].get("ranges", [])
        top = view.acked_max(end, {node_id}).get(node_id, 0)
        if not ranges or ranges[0][0] != 1 or len(ranges) != 1 or ranges[0][1] < top:
            problems.append(f"once it read again the subscriber got {ranges[:4]} (wanted "
                            f"[[1, >= {top}]] in one run; it ended {mine['done']['outcome']})")
        details = {"stall_s": round(end - begin, 2), "acks_during": len(acks),
                   "longest_ack_gap_s": round(gap, 2), "behind": behind, "received": ranges[:5]}
        if problems:
            return self.failed("; ".join(problems), **details)
        return self.passed(f"{end - begin:.1f}s stall: {target} acked {len(acks)} calls (longest "
                           f"gap {gap:.1f}s), the others kept within {self.lag_s:g}s, it fell "
                           f"behind {behind}x, then got 1..{ranges[0][1]} gap-free", **details)
