"""Each expectation on hand-made histories: it passes when its promise holds, and otherwise
fails with a message that names what it saw."""

from __future__ import annotations

from shakedown.scenarios import (
    CatchesUp,
    Converges,
    NotReplicatedDuring,
    PublishesAcked,
    ReplicatesDuring,
    SustainableRate,
    TargetsCarried,
    VectorClocksAgree,
)
from tests.scenarios.histories import NODES, Events, replicated_run


def test_not_replicated_during_passes_when_the_blackhole_holds() -> None:
    check = NotReplicatedDuring("blackhole@node-300", "node-300").check(replicated_run().view())
    assert check.status == "pass", check.message


def test_not_replicated_during_fails_on_a_leak_and_says_where() -> None:
    check = NotReplicatedDuring("blackhole@node-300", "node-300").check(
        replicated_run(leak=True).view())
    assert check.status == "fail"
    assert "node-100 held 300:" in check.message and "replicated while" in check.message


def test_a_window_missing_from_the_history_fails_the_check() -> None:
    check = CatchesUp("stop@node-200").check(replicated_run().view())
    assert check.status == "fail" and "never opened" in check.message


def test_catches_up_after_the_clear_or_names_who_is_behind() -> None:
    run = replicated_run()
    ok = CatchesUp("blackhole@node-300", within_s=2).check(run.view(stores=run.stores()))
    assert ok.status == "pass", ok.message
    stuck = replicated_run(stuck=True)
    bad = CatchesUp("blackhole@node-300", within_s=2).check(stuck.view(stores=stuck.stores()))
    assert bad.status == "fail"
    assert "node-100 behind" in bad.message and "not caught up within 2s" in bad.message


def test_catches_up_and_converges_see_a_hole_below_the_top() -> None:
    """The clocks reach the top on time, but node-300 lost 300:7 (acked before the clear)."""
    run = replicated_run()
    view = run.view(stores=run.stores(drop=("node-300", 300, 7)))
    caught = CatchesUp("blackhole@node-300", within_s=2).check(view)
    assert caught.status == "fail"
    assert "node-300: originator 300 lacks sequence 7" in caught.message, caught.message
    converged = Converges(within_s=5).check(view)
    assert converged.status == "fail"
    assert "node-300: originator 300 lacks sequence 7" in converged.message, converged.message


def test_converges_names_other_bytes_and_unreadable_stores() -> None:
    run = replicated_run()
    stores = run.stores()
    stores["node-200"][(100, 3)] = ("forged", "p")
    del stores["node-100"]
    check = Converges(within_s=5).check(run.view(stores=stores))
    assert check.status == "fail"
    assert "node-100: its envelopes could not be read" in check.message
    assert "node-200: originator 100 holds other bytes for sequence 3" in check.message


def test_replicates_during_passes_while_every_node_keeps_receiving() -> None:
    ev = Events()
    ev.window("latency@node-200", 1.0, 4.0, kind="latency", target="node-200")
    for k in range(10):
        for node in NODES.values():
            ev.publish(k * 0.5 + 0.1, node)
        ev.sample(k * 0.5 + 0.3, {n: ev.all_at() for n in NODES})
    check = ReplicatesDuring("latency@node-200").check(ev.view())
    assert check.status == "pass", check.message


def test_replicates_during_names_the_node_that_stopped_receiving() -> None:
    check = ReplicatesDuring("blackhole@node-300", receivers=("node-200",)).check(
        replicated_run().view())
    assert check.status == "fail" and "node-200 stuck at 300:" in check.message


def test_converges_reads_the_settle_and_the_last_sample() -> None:
    run = replicated_run()
    assert Converges(within_s=5).check(run.view(stores=run.stores())).status == "pass"
    bad = Converges(within_s=5).check(replicated_run(stuck=True).view())
    assert bad.status == "fail" and "node-100 behind" in bad.message


def test_publishes_acked_counts_calls_that_were_not() -> None:
    ev = Events()
    ev.publish(1, 100)
    ev.publish(2, 200, ok=False, target="gateway")
    check = PublishesAcked().check(ev.view())
    assert check.status == "fail"
    assert check.message == ("1 of 2 publish calls were not acknowledged "
                             "(UNAVAILABLE via gateway x1)")


def test_targets_carried_names_an_idle_gateway() -> None:
    ev = Events()
    ev.publish(1, 100, target="gateway")
    check = TargetsCarried(("gateway", "gateway-1")).check(ev.view())
    assert check.status == "fail" and check.message.endswith("gateway-1")


def test_sustainable_rate_is_the_last_step_before_the_first_unsustained() -> None:
    ev = Events()
    for rate, ok in ((5, True), (10, True), (20, True), (30, False), (50, True)):
        ev.add(rate, "info", "ramp", rate=rate, sent=rate * 3, acked=rate * 3, failed=0,
               achieved=rate, caught_up=ok, sustained=ok)
    view = ev.view()
    check = SustainableRate(at_least=20).check(view)
    assert check.status == "pass" and view.metrics["sustainable_rate"] == 20
    assert "30/s not sustained: replication not caught up" in check.message
    assert SustainableRate(at_least=25).check(ev.view()).status == "fail"


def test_vector_clocks_agree_reads_the_stores_and_finds_gaps() -> None:
    ev = Events()
    ev.publish(1, 100, n=3)
    full = {(100, s): (f"d100-{s}", f"p100-{s}") for s in (1, 2, 3)}
    gap = {k: v for k, v in full.items() if k != (100, 2)}
    ok = VectorClocksAgree().check(ev.view(stores={"node-100": full, "node-200": full}))
    assert ok.status == "pass", ok.message
    bad = VectorClocksAgree().check(ev.view(stores={"node-100": full, "node-200": gap}))
    assert bad.status == "fail" and "sequence gaps: node-200 originator 100" in bad.message
    short = {k: v for k, v in full.items() if k != (100, 3)}
    behind = VectorClocksAgree().check(ev.view(stores={"node-100": short, "node-200": short}))
    assert behind.status == "fail" and "lacks acknowledged envelopes" in behind.message
