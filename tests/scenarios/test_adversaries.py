"""The adversarial scenarios' pure parts on hand-made data: agents in the history, the
valid-prefix judgement, and which verify findings were expected."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from shakedown.scenarios.adversaries import ValidPrefixOnly, judge_findings
from shakedown.scenarios.agents import Agent, AgentContext, agent_outcome, run_agent
from shakedown.scenarios.history import History, read_history
from tests.scenarios.histories import Events


def stores(rogue: dict[int, str], honest: dict[int, str]) -> dict:
    """node-300 is the rogue (originator 300); node-100 and node-200 hold ``honest``."""
    def of(held: dict[int, str]) -> dict:
        return {(300, s): (d, f"p{s}") for s, d in held.items()}
    return {"node-300": of(rogue), "node-100": of(honest), "node-200": of(honest)}


def rogue_run() -> Events:
    ev = Events()
    for k in range(4):
        ev.publish(0.5 * k, 300)  # 20 acked envelopes of originator 300
    return ev


OWN = {s: f"d{s}" for s in range(1, 21)}


def test_valid_prefix_only_passes_when_peers_hold_exactly_the_rogues_envelopes() -> None:
    check = ValidPrefixOnly("node-300").check(rogue_run().view(stores=stores(OWN, OWN)))
    assert check.status == "pass", check.message
    assert "exactly node-300's 20 stored envelopes" in check.message


def test_valid_prefix_only_names_a_forgery_a_changed_copy_and_a_gap() -> None:
    forged = {**OWN, 21: "forged"}
    check = ValidPrefixOnly("node-300").check(rogue_run().view(stores=stores(OWN, forged)))
    assert check.status == "fail" and "holds 300:21, which node-300 never stored" in check.message
    changed = {**OWN, 7: "other"}
    check = ValidPrefixOnly("node-300").check(rogue_run().view(stores=stores(OWN, changed)))
    assert "copy of 300:7 is not the one node-300 stored" in check.message
    holed = {s: d for s, d in OWN.items() if s != 9}
    check = ValidPrefixOnly("node-300").check(rogue_run().view(stores=stores(OWN, holed)))
    assert "lacks 300:9 below its highest 20" in check.message


def test_valid_prefix_only_wants_every_acknowledged_envelope() -> None:
    short = {s: d for s, d in OWN.items() if s <= 12}
    check = ValidPrefixOnly("node-300").check(rogue_run().view(stores=stores(OWN, short)))
    assert check.status == "fail" and "only up to 12 of the 20 acknowledged" in check.message


def test_judge_findings_wants_exactly_the_expected_flags() -> None:
    wanted = (("t[node-100]", "node 300"), ("t[node-200]", "node 300"))
    both = ["t[node-100]: Failed: node 300 lied", "t[node-200]: Failed: node 300 lied"]
    assert judge_findings(both, wanted) == ([], [])
    missed, extra = judge_findings([*both[:1], "other[x]: Failed: gap"], wanted)
    assert missed == ["t[node-200] (wanted 'node 300')"] and extra == ["other[x]: Failed: gap"]
    missed, _ = judge_findings(["t[node-100]: Failed: node 200 lied", both[1]], wanted)
    assert missed == ["t[node-100] (wanted 'node 300')"], "the fragment must be in the message"


@dataclass(frozen=True)
class Crashes(Agent):
    def run(self, ctx: AgentContext) -> None:
        raise RuntimeError("agent bug")


@dataclass(frozen=True)
class Counts(Agent):
    def run(self, ctx: AgentContext) -> None:
        ctx.history.info("counted", n=3)


def test_an_agent_records_its_end_and_a_crash_in_the_history(tmp_path: Path) -> None:
    history = History(tmp_path / "history.jsonl")
    ctx = AgentContext({"nodes": []}, history, threading.Event(), lambda: 0.0, lambda _: None)
    run_agent(Counts(label="ok"), ctx)
    run_agent(Crashes(label="bad"), ctx)
    history.close()
    events = read_history(tmp_path / "history.jsonl")
    assert agent_outcome(events, "ok")["type"] == "ok"
    bad = agent_outcome(events, "bad")
    assert bad["type"] == "fail" and bad["error"] == "RuntimeError: agent bug"
    assert agent_outcome(events, "never") is None
