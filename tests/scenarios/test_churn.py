"""Churn expectations on hand-made histories: each passes when its promise holds and fails
naming the node and the numbers when it does not."""

from __future__ import annotations

from shakedown.chain.records import PayerReportRecord
from shakedown.scenarios.churn import CatchesUpAfter, LeaverNotFollowed, _last_report_problems
from tests.scenarios.histories import NODES, Events


def _action(ev: Events, t: float, window: str, ok: bool = True, **facts: object) -> None:
    op = 900 + len(ev.events)
    ev.add(t - 0.5, "invoke", "action", op=op, window=window)
    ev.add(t, "ok" if ok else "fail", "action", op=op, window=window, **facts)


def joined_run(catches_up: bool) -> Events:
    """node-400 joins at 3 s; it holds the others' envelopes at 4 s (or never)."""
    ev = Events()
    for k in range(6):
        ev.publish(0.5 * k, 100)
    _action(ev, 3.0, "node-join@node-400", node="node-400", node_id=400)
    everything = ev.all_at()
    for t in (3.5, 4.0, 4.5):
        newcomer = everything if catches_up and t >= 4.0 else {}
        ev.sample(t, {**{n: everything for n in NODES}, "node-400": newcomer})
    return ev


def test_a_joiner_that_catches_up_passes_with_the_time_it_took() -> None:
    view = joined_run(catches_up=True).view()
    check = CatchesUpAfter("node-join@node-400", within_s=5).check(view)
    assert check.status == "pass", check.message
    assert "1.0s after it" in check.message
    assert view.metrics["caught_up_after_s"] == {"node-join@node-400": 1.0}


def test_a_joiner_that_never_catches_up_is_named_with_its_lag() -> None:
    check = CatchesUpAfter("node-join@node-400", within_s=1).check(
        joined_run(catches_up=False).view())
    assert check.status == "fail"
    assert ("node-400 did not catch up within 1s of node-join@node-400: behind {100: '0/30'}"
            in check.message)


def test_a_failed_or_missing_join_fails_the_check() -> None:
    ev = Events()
    _action(ev, 1.0, "node-join@node-400", ok=False, error="registry assigned node-500")
    check = CatchesUpAfter("node-join@node-400").check(ev.view())
    assert check.status == "fail" and "failed: registry assigned node-500" in check.message
    missing = CatchesUpAfter("node-join@node-500").check(ev.view())
    assert missing.status == "fail" and "not in the history" in missing.message


def left_run(following: list[str]) -> Events:
    ev = Events()
    _action(ev, 2.0, "node-leave@node-300", node="node-300", node_id=300,
            still_following=following, unfollowed_after_s=None if following else 0.4,
            after_leave=[[300, 11, "a"], [300, 12, "b"]])
    return ev


def test_a_leaver_nobody_follows_passes() -> None:
    stores = {"node-100": {(100, 1): ("d", "p")}, "node-200": {(100, 1): ("d", "p")}}
    view = left_run([]).view(stores=stores)
    view.nodes.pop("node-300")
    check = LeaverNotFollowed("node-leave@node-300").check(view)
    assert check.status == "pass", check.message


def test_a_leaver_still_followed_is_named_with_the_envelopes_that_leaked() -> None:
    stores = {"node-100": {(300, 11): ("a", "x"), (300, 12): ("b", "y")}, "node-200": {}}
    view = left_run(["node-100"]).view(stores=stores)
    view.nodes.pop("node-300")
    check = LeaverNotFollowed("node-leave@node-300").check(view)
    assert check.status == "fail"
    assert check.message == ("node-300 was replicated from after it left: still following "
                             "node-300: node-100; node-100 holds 2 of them (e.g. 300:11)")


def test_a_leaver_still_canonical_fails() -> None:
    check = LeaverNotFollowed("node-leave@node-300").check(left_run([]).view(stores={}))
    assert check.status == "fail" and "node-300 is still canonical" in check.message


def _report(nodes: tuple[int, ...]) -> PayerReportRecord:
    return PayerReportRecord(100, 0, 10, 1, b"", nodes, True, 5)


def test_the_last_settled_report_must_name_the_current_set_and_carry_its_quorum() -> None:
    final = {100, 200, 400}
    good = {100: [(0, _report((100, 200, 300))), (1, _report((100, 200, 400)))]}
    assert not _last_report_problems(good, {(100, 1): {100, 400}}, final)
    stale = {100: [(0, _report((100, 200, 300)))]}
    assert _last_report_problems(stale, {(100, 0): {100, 200}}, final) == [
        "originator 100's last settled report (index 0) names nodes [100, 200, 300], not the "
        "canonical [100, 200, 400]"]
    thin = _last_report_problems(good, {(100, 1): {100, 300}}, final)
    assert thin == ["originator 100's last settled report (index 1) was signed by [100, 300]: "
                    "fewer than 2 of [100, 200, 400]"]
