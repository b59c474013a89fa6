"""Clock-skew expectations on hand-made data: timestamps judged against the node's offset,
calls during a restart left out, and replicas that never agree named."""

from __future__ import annotations

from shakedown.scenarios.skew import (
    ReplicasAgreeUnderSkew,
    SkewWindow,
    TimedCall,
    expected_offset,
    judge_timestamps,
    skew_windows,
    timed_calls,
)
from tests.scenarios.histories import NODES, Events

AHEAD = SkewWindow(100, "clock-skew@node-100", 1.0, (10.0, 12.0), (30.0, 32.0))


def call(at: float, node: int = 100, seq: int = 1) -> TimedCall:
    return TimedCall(node, at, at + 0.1, ((node, seq),))


def test_the_offset_of_a_call_is_the_skew_in_force_for_all_of_it() -> None:
    assert expected_offset(call(5.0), [AHEAD]) == 0.0
    assert expected_offset(call(20.0), [AHEAD]) == 1.0
    assert expected_offset(call(11.0), [AHEAD]) is None   # the node was restarting
    assert expected_offset(call(31.0), [AHEAD]) is None
    assert expected_offset(call(40.0), [AHEAD]) == 0.0
    assert expected_offset(call(20.0, node=200), [AHEAD]) == 0.0


def test_timestamps_that_show_the_skew_pass_and_others_are_named() -> None:
    calls = [call(5.0, seq=1), call(20.0, seq=2), call(40.0, seq=3)]
    right = {(100, 1): 5_050_000_000, (100, 2): 21_050_000_000, (100, 3): 40_050_000_000}
    found = judge_timestamps(calls, [AHEAD], right, slack_s=0.05)
    assert not found.problems and found.judged == 3
    assert found.measured == {"node-100 +0s": [0.0, 0.0], "node-100 +1s": [1.0]}
    unskewed = {**right, (100, 2): 20_050_000_000}  # the node ignored its own clock
    bad = judge_timestamps(calls, [AHEAD], unskewed, slack_s=0.05)
    assert bad.problems == ["100:2 stamped +0.000s from its publish call; node-100's clock was "
                            "+1s off then"]


def test_windows_and_calls_are_read_from_the_history_in_wall_time() -> None:
    ev = Events()
    ev.add(1.0, "invoke", "fault", op=50, window="clock-skew@node-100", kind="clock-skew",
           target="node-100", params={"offset_s": 1.0})
    ev.add(3.0, "ok", "fault", op=50)
    ev.add(8.0, "invoke", "heal", op=51, window="clock-skew@node-100")
    ev.add(9.0, "ok", "heal", op=51, window="clock-skew@node-100")
    ev.publish(5.0, 100, n=2)
    (window,) = skew_windows(ev.events)
    assert (window.node_id, window.offset_s) == (100, 1.0)
    assert window.applying == (1e9 + 1.0, 1e9 + 3.0) and window.clearing == (1e9 + 8.0, 1e9 + 9.0)
    (timed,) = timed_calls(ev.events, NODES)
    assert timed.node_id == 100 and timed.keys == ((100, 1), (100, 2))
    assert round(timed.completed - timed.invoked, 3) == 0.01


def skewed_run(agree: bool) -> Events:
    ev = Events()
    ev.window("clock-skew@node-100", 1.0, 12.0, kind="clock-skew", target="node-100")
    ev.window("clock-skew@node-200", 1.5, 12.0, kind="clock-skew", target="node-200")
    for k in range(20):
        t = 0.5 * k
        for node in NODES.values():
            ev.publish(t + 0.1, node)
        held = ev.all_at()
        stalled = {**held, 200: min(held[200], 5)}
        ev.sample(t + 0.3, {n: held if agree or n != "node-100" else stalled for n in NODES})
    return ev


def test_replicas_that_agree_while_skewed_pass() -> None:
    check = ReplicasAgreeUnderSkew(("clock-skew@node-100", "clock-skew@node-200")).check(
        skewed_run(agree=True).view())
    assert check.status == "pass", check.message


def test_a_node_that_refuses_skewed_envelopes_never_agrees_and_is_named() -> None:
    check = ReplicasAgreeUnderSkew(("clock-skew@node-100", "clock-skew@node-200")).check(
        skewed_run(agree=False).view())
    assert check.status == "fail"
    assert "replicas never agreed while the clocks were skewed" in check.message
    assert "node-100 behind {200: '5/" in check.message
