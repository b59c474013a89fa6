"""Liveness, recovery, tier and propagation expectations on hand-made histories and plans:
each passes when its promise holds and fails naming the node, window or tier."""

from __future__ import annotations

import random

from shakedown.scenarios.api import Fault
from shakedown.scenarios.liveness import EachRecovers, Liveness, Recovers
from shakedown.scenarios.propagation import Propagate, StoredOncePerOriginator, plan_sends
from shakedown.scenarios.tiers import DELAY_TIERS, Link, TierLag, link_tier, tier_faults
from tests.scenarios.histories import NODES, Events

GROUPS = {"A": ("node-100",), "B": ("node-200",), "C": ("node-300",)}


def steady(until: float = 10.0, down: tuple[float, float] | None = None,
           stuck_node: str = "", window: tuple[str, str] = ("kill@node-300", "kill")) -> Events:
    """Publishes to every node every 0.5 s; node-300 refuses them while ``down``."""
    ev = Events()
    if down:
        ev.window(window[0], down[0], down[1], kind=window[1], target="node-300")
    t = 0.0
    while t < until:
        for name, node in NODES.items():
            off = down is not None and name == "node-300" and down[0] <= t < down[1]
            ev.publish(t + 0.1, node, ok=not off)
        held = ev.all_at()
        ev.sample(t + 0.3, {n: ({o: 0 for o in held} if n == stuck_node and down
                                and t >= down[0] else held) for n in NODES})
        t += 0.5
    ev.add(until, "info", "phase", phase="workload", state="end")
    return ev


def test_liveness_reports_the_longest_stretch_without_an_ack() -> None:
    view = steady().view()
    ok = Liveness(max_stall_s=1.5).check(view)
    assert ok.status == "pass", ok.message
    assert view.metrics["longest_stall_s"] == 1.1  # from the workload's start to the first
    ev = steady(until=4)
    ev.events = [e for e in ev.events if not (e.get("f") == "publish" and 1.0 < e["t"] - 5 < 3.5)]
    bad = Liveness(max_stall_s=1.5).check(ev.view())
    assert bad.status == "fail" and "no publish acknowledged for 3.0s from 1.6s" in bad.message


def test_recovers_after_the_node_is_back_or_names_it() -> None:
    ok = Recovers("kill@node-300", within_s=2).check(steady(down=(2.0, 4.0)).view())
    assert ok.status == "pass", ok.message
    stuck = Recovers("kill@node-300", within_s=2).check(
        steady(down=(2.0, 4.0), stuck_node="node-300").view())
    assert stuck.status == "fail" and "node-300 not caught up within 2s of clearing" in \
        stuck.message


def test_a_node_that_never_acknowledges_again_does_not_recover() -> None:
    ev = steady(down=(2.0, 20.0), until=10)
    ev.events = [e for e in ev.events if not (e.get("f") == "heal")]
    ev.window("kill@node-300", 2.0, 4.0, kind="kill", target="node-300")
    check = EachRecovers(("kill",), within_s=2).check(ev.view())
    assert check.status == "fail"
    assert "node-300 did not acknowledge within 2s of clearing kill@node-300" in check.message


def test_each_recovers_wants_enough_windows() -> None:
    check = EachRecovers(("restart",), at_least=1).check(steady(down=(2.0, 4.0)).view())
    assert check.status == "fail" and "only 0 restart windows applied" in check.message


def test_a_link_is_as_good_as_its_farther_tier_and_faults_go_each_way() -> None:
    assert link_tier("A", "C", ("A", "B", "C")) == "C"
    faults = tier_faults(GROUPS, {"C": Link(rate_kbit=100)})
    assert faults == (Fault("tbf", "node-100", {"rate_kbit": 100, "dst": "node-300"}),
                      Fault("tbf", "node-200", {"rate_kbit": 100, "dst": "node-300"}),
                      Fault("tbf", "node-300", {"rate_kbit": 100, "dst": "node-100,node-200"}))
    delays = tier_faults({"A": ("vm1", "vm2"), "C": ("vm3",)}, DELAY_TIERS)
    assert Fault("netem", "vm1", {"delay_ms": 10, "dst": "vm2"}) in delays
    assert Fault("netem", "vm2", {"delay_ms": 300, "dst": "vm3"}) in delays
    assert Fault("netem", "vm3", {"delay_ms": 300, "dst": "vm1,vm2"}) in delays
    # the same on SSH hosts: one host per fault, no direction=both
    assert all("," not in f.target and "direction" not in f.params for f in delays)
    assert len(delays) == 5


def tiered_run(c_stalls: bool) -> Events:
    """Tier faults from 1 s to 9 s; node-300 receives 2 s late (or never)."""
    ev = Events()
    ev.window("tbf@node-100", 1.0, 9.0, kind="tbf", target="node-100")
    history: list[dict[int, int]] = []
    for k in range(24):
        t = 0.5 * k
        for node in NODES.values():
            ev.publish(t + 0.1, node, n=1)
        history.append(ev.all_at())
        late = history[max(0, k - 4)]
        ev.sample(t + 0.3, {"node-100": history[-1], "node-200": history[-1],
                            "node-300": {} if c_stalls else late})
    return ev


def test_tier_lag_is_reported_per_tier() -> None:
    view = tiered_run(c_stalls=False).view()
    check = TierLag(GROUPS, "tbf@node-100", max_lag_s=3).check(view)
    assert check.status == "pass", check.message
    lag = view.metrics["tier_lag"]
    assert set(lag) == {"B", "C"} and lag["B"]["max_s"] < 0.5 and lag["C"]["max_s"] >= 2.0


def test_a_tier_that_never_receives_is_named() -> None:
    check = TierLag(GROUPS, "tbf@node-100", max_lag_s=3).check(tiered_run(c_stalls=True).view())
    assert check.status == "fail"
    assert check.message.startswith("node-100->node-300: ") and "never arrived" in check.message


def test_the_propagation_plan_is_the_seed_s_and_sends_everything_everywhere() -> None:
    spec = Propagate(batch=30, to=("node-100", "node-200"), chunk=7)
    one, again = plan_sends(spec, random.Random("7:x")), plan_sends(spec, random.Random("7:x"))
    assert one == again != plan_sends(spec, random.Random("8:x"))
    for node in spec.to:
        mine = [i for s in one if s.node == node for i in s.indices]
        assert sorted(mine) == list(range(30)) and mine != list(range(30))
    assert spec.end_s >= max(s.at_s for s in one) + spec.start_s


def test_stored_once_per_originator_passes_and_names_what_is_missing_or_doubled() -> None:
    ev = Events()
    ev.add(0.5, "info", "propagation", label="p", payloads=["x", "y"],
           plan=[["node-100", 0.1, [0, 1]], ["node-200", 0.2, [1, 0]]])
    ev.add(1.0, "ok", "publish", op=1, acks=[[100, 1, "d1", "x"], [100, 2, "d2", "y"]])
    ev.add(1.1, "ok", "publish", op=2, acks=[[200, 1, "e1", "y"], [200, 2, "e2", "x"]])
    whole = {(100, 1): ("d1", "x"), (100, 2): ("d2", "y"), (200, 1): ("e1", "y"),
             (200, 2): ("e2", "x")}
    check = StoredOncePerOriginator("p")
    assert check.check(ev.view(stores={"node-100": whole, "node-200": dict(whole)})
                       ).status == "pass"
    short = {k: v for k, v in whole.items() if k[0] == 200 or k == (100, 1)}
    bad = check.check(ev.view(stores={"node-100": whole, "node-200": short}))
    assert bad.status == "fail"
    assert "node-200 lacks 1 copies (e.g. payload y of originator 100)" in bad.message
    assert "node-200 end with other envelopes than node-100" in bad.message
    doubled = {**whole, (100, 3): ("d3", "x")}
    twice = check.check(ev.view(stores={"node-100": doubled, "node-200": doubled}))
    assert twice.status == "fail" and "holds twice 1 copies" in twice.message
