"""Workload items that run themselves beside the publishers: adversaries and watchers.

An ``Agent`` is data in a scenario, like ``Publish``: a frozen dataclass whose ``run(ctx)``
the driver starts at ``start_s`` in its own thread and joins with the rest of the workload.
It sees the run only through ``AgentContext`` (the deployment record, the history, the stop
event) and writes what it did into the history, where its expectations read it back.

    @dataclass(frozen=True)
    class Flood(Agent):
        def run(self, ctx: AgentContext) -> None:
            while not ctx.stop.is_set() and ctx.elapsed() < self.end_s: ...
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from refnode.proto import refnode_pb2 as pb
from shakedown.scenarios.history import History, iter_history
from shakedown.scenarios.probe import payload_digest

# Errors that mean "not applied"; any other (UNAVAILABLE, DEADLINE_EXCEEDED...) is unsure.
DEFINITE = {"INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION",
            "UNIMPLEMENTED", "NOT_FOUND", "ALREADY_EXISTS", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED"}


@dataclass(frozen=True)
class Agent:
    """A workload item with its own loop; subclasses say what ``run`` does."""

    start_s: float = 0.0
    duration_s: float = 10.0
    label: str = "agent"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def run(self, ctx: AgentContext) -> None:
        raise NotImplementedError


@dataclass
class AgentContext:
    """What an agent may use of the run: the record, the history, the clock, the stop event."""

    record: dict[str, Any]
    history: History
    stop: threading.Event
    elapsed: Callable[[], float]   # seconds since the workload started (scenario time)
    say: Callable[[str], None]

    def node(self, name: str) -> dict[str, Any]:
        """The record of node ``name`` (``grpc``, ``node_id``, ``dsn``...)."""
        for node in self.record["nodes"]:
            if node["name"] == name:
                return dict(node)
        known = ", ".join(n["name"] for n in self.record["nodes"])
        raise KeyError(f"no node {name!r} in this testnet; nodes: {known}")

    def until(self, end_s: float) -> bool:
        """True while the run goes on and scenario time is before ``end_s``."""
        return not self.stop.is_set() and self.elapsed() < end_s

    def seed(self) -> int:
        """The run's seed (from the history's plan event), for agents that draw choices."""
        for event in iter_history(self.history.path):
            if event.get("f") == "plan":
                return int(event["seed"])
        return 0

    def sleep_until(self, t_s: float) -> bool:
        """Wait until scenario time ``t_s``; False if the run was stopped meanwhile."""
        return not self.stop.wait(max(0.0, t_s - self.elapsed()))


def run_agent(agent: Agent, ctx: AgentContext) -> None:
    """Run one agent, recording its start and end (or the error that ended it)."""
    op = ctx.history.invoke("agent", label=agent.label, kind=type(agent).__name__)
    try:
        agent.run(ctx)
    except Exception as e:  # an agent's bug must show in the history, not vanish in a thread
        ctx.history.complete("agent", op, "fail", label=agent.label,
                             error=f"{type(e).__name__}: {e}"[:500])
        ctx.say(f"agent {agent.label} failed: {type(e).__name__}: {e}")
        return
    ctx.history.complete("agent", op, "ok", label=agent.label)


def agent_outcome(events: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    """The completion event of agent ``label`` (None: it never finished)."""
    return next((e for e in events if e.get("f") == "agent" and e.get("label") == label
                 and e.get("type") != "invoke"), None)


def record_publish(history: History, label: str, target: str, node_id: int,
                   envelopes: list[pb.PayerEnvelope],
                   send: Callable[[list[pb.PayerEnvelope]], list[pb.OriginatorEnvelope]]
                   ) -> list[pb.OriginatorEnvelope] | None:
    """Publish through ``send`` as one history ``publish`` call, in the shape the workload's
    publishers write (each ack with its digests), so the history set checker counts it.
    Returns the originator envelopes, or None when the call failed."""
    digests = [payload_digest(e.unsigned_client_envelope) for e in envelopes]
    op = history.invoke("publish", p=threading.current_thread().name, label=label,
                        target=target, node=node_id, n=len(envelopes))
    try:
        signed = send(envelopes)
    except grpc.RpcError as e:
        code = e.code().name if isinstance(e, grpc.Call) else type(e).__name__
        detail = e.details() if isinstance(e, grpc.Call) else str(e)
        history.complete("publish", op, "fail" if code in DEFINITE else "info", error=code,
                         detail=(detail or "")[:200], payloads=digests)
        return None
    rows = []
    for env in signed:
        unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
        inner = pb.PayerEnvelope.FromString(unsigned.payer_envelope_bytes)
        rows.append([unsigned.originator_node_id, unsigned.originator_sequence_id,
                     hashlib.sha256(env.SerializeToString()).hexdigest(),
                     payload_digest(inner.unsigned_client_envelope)])
    history.complete("publish", op, "ok", acks=rows)
    return signed
