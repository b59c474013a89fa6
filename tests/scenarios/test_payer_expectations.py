"""The payer expectations' own logic on hand-made data: settlements placed in time by the
chain head the samples saw, charges judged against the rates in force, verify's verdicts
read from the history, and the vacuous runs they refuse."""

from __future__ import annotations

from refnode.chain import Rates
from shakedown.chain.records import PayerReportRecord
from shakedown.scenarios.payer import (
    NothingSettledDuring,
    VerifyFlagged,
    settled_by,
    settled_inside,
)
from shakedown.scenarios.rates import judge_charges
from shakedown.scenarios.view import Sample
from shakedown.verify.opened import Opened
from tests.scenarios.histories import Events

OLD = Rates(1000, 1, 0, 1000, 0)
NEW = Rates(5000, 3, 0, 1000, 100)  # in force from unix second 100
PAYER = "0x" + "ab" * 20


def samples(*blocks: int) -> list[Sample]:
    """One sample each 0.5 s from 0 s, seeing these chain heads."""
    return [Sample(k * 0.5, {}, b) for k, b in enumerate(blocks)]


def test_a_settlement_inside_the_window_is_named_with_its_time() -> None:
    seen = samples(10, 11, 12, 12, 12, 13, 14)  # block 13 mined between 2.0 s and 2.5 s
    found = settled_inside([(100, 4, 13)], seen, 1.0, 3.0)
    assert found == ["originator 100 report index 4 settled between 2.0s and 2.5s (block 13)"]


def test_settlements_at_the_edges_of_the_window_are_not_counted() -> None:
    seen = samples(10, 11, 12, 13, 14)
    assert settled_inside([(100, 1, 11), (200, 1, 14)], seen, 0.6, 1.9) == []
    assert settled_inside([(100, 1, 99)], seen, 0.0, 9.0) == []  # never seen mined: unsure


def test_settled_by_counts_what_the_samples_saw_mined_by_then() -> None:
    seen = samples(10, 11, 12, 13)
    assert settled_by([(100, 0, 11), (100, 1, 13)], seen, 1.0) == 1
    assert settled_by([(100, 0, 11), (100, 1, 13)], seen, 0.4) == 0


def test_nothing_settled_during_refuses_a_window_without_acks() -> None:
    ev = Events()
    ev.window("stop@node-300", 1.0, 6.0, kind="stop")
    ev.window("stop@node-400", 1.0, 6.0, kind="stop", target="node-400")
    ev.publish(0.5, 100)
    ev.publish(7.0, 100)
    check = NothingSettledDuring(("stop@node-300", "stop@node-400")).check(ev.view())
    assert check.status == "fail" and "vacuous" in check.message


def test_nothing_settled_during_needs_every_window() -> None:
    ev = Events()
    ev.window("stop@node-300", 1.0, 6.0, kind="stop")
    check = NothingSettledDuring(("stop@node-300", "stop@node-400")).check(ev.view())
    assert check.status == "fail" and "'stop@node-400' never opened" in check.message


def _verify_action(ev: Events, failing: list[str], ok: bool = True) -> None:
    ev.add(3.0, "invoke", "action", op=90, kind="verify", target="stuck", window="verify@stuck")
    if ok:
        ev.add(7.0, "ok", "action", op=90, window="verify@stuck", tests=4, failing=failing)
    else:
        ev.add(7.0, "fail", "action", op=90, window="verify@stuck", error="no pytest")


def test_verify_flagged_passes_when_each_named_check_failed_with_the_fragment() -> None:
    ev = Events()
    _verify_action(ev, ["test_no_report_stuck[node-100]: node-100: originator 100 report "
                        "(40, 60] id ab pending submission for 7 s (threshold 3 s)"])
    check = VerifyFlagged("verify@stuck", ("test_no_report_stuck[node-100]",),
                          "pending submission").check(ev.view())
    assert check.status == "pass", check.message


def test_verify_flagged_fails_when_verify_saw_nothing_or_did_not_run() -> None:
    ev = Events()
    _verify_action(ev, [])
    exp = VerifyFlagged("verify@stuck", ("test_no_report_stuck[node-100]",), "pending")
    check = exp.check(ev.view())
    assert check.status == "fail" and "did not flag test_no_report_stuck[node-100]" in \
        check.message and "flagged nothing" in check.message
    broken = Events()
    _verify_action(broken, [], ok=False)
    assert "did not run: no pytest" in exp.check(broken.view()).message


def envelope(seq: int, t: float, rates: Rates, payer: str = PAYER) -> Opened:
    size, days = 100, 30
    return Opened(100, seq, int(t * 1e9), "", payer, 100, size, days,
                  rates.base_fee(size, days), rates.congestion_fee)


def report(start: int, end: int, fees: int) -> PayerReportRecord:
    return PayerReportRecord(100, start, end, 0, b"", (100, 200, 300), True, fees)


def test_charges_at_the_rates_in_force_pass_and_are_counted_by_side() -> None:
    envs = {(100, 1): envelope(1, 90.0, OLD), (100, 2): envelope(2, 101.0, OLD),
            (100, 3): envelope(3, 102.0, NEW), (100, 4): envelope(4, 110.0, NEW)}
    fees = sum(e.fee for e in envs.values())
    judged = judge_charges(envs, [OLD, NEW], {(100, 0): report(0, 4, fees)},
                           {(100, 0): {PAYER: fees}}, 100.0, pickup_s=5)
    assert judged.problems == []
    assert (judged.before, judged.during, judged.after, judged.reports) == (1, 2, 1, 1)


def test_an_old_price_after_the_pickup_time_is_named() -> None:
    envs = {(100, 1): envelope(1, 110.0, OLD)}
    fee = envs[(100, 1)].fee
    judged = judge_charges(envs, [OLD, NEW], {(100, 0): report(0, 1, fee)},
                           {(100, 0): {PAYER: fee}}, 100.0, pickup_s=5)
    assert judged.problems == ["envelope 100:1, +10.0s from the change, charges 4000 + 0 "
                               "picodollars; the rates in force price it 14000 + 0"]


def test_a_payer_charged_other_than_its_envelopes_cost_is_named() -> None:
    envs = {(100, 1): envelope(1, 90.0, OLD)}
    judged = judge_charges(envs, [OLD, NEW], {(100, 0): report(0, 2, 9)},
                           {(100, 0): {PAYER: 9}}, 100.0, pickup_s=5)
    assert judged.problems == [
        "originator 100 report 0 covers envelope 100:2, which the database lacks",
        f"originator 100 report 0 charged payer {PAYER} 9 picodollars; its envelopes cost 4000"]
