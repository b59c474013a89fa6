"""Expectations around node actions: newcomers (and reconfigured nodes) catch up, leavers
are no longer followed, payer reports keep settling with the quorum of the canonical set as
it is now.

    CatchesUpAfter("node-join@node-400", within_s=20)
    LeaverNotFollowed("node-leave@node-300")
    SettlesAfterChurn(joined=("node-400",), within_s=60)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shakedown.scenarios.actions import chain_of
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.payer import run_record, short_of, wait_chain_covers
from shakedown.scenarios.view import RunView, behind


@dataclass(frozen=True)
class Done:
    """A scheduled action as the history has it (scenario times)."""

    window: str
    invoked: float
    completed: float
    ok: bool
    facts: dict[str, Any]


def action_done(view: RunView, window: str) -> Done | None:
    """The completion of action ``window`` (``node-join@node-400``), or None."""
    invoked: dict[int, float] = {}
    for e in view.events:
        if e.get("f") != "action":
            continue
        if e.get("type") == "invoke":
            invoked[e["op"]] = e["t"] - view.t0
        elif e.get("window") == window:
            return Done(window, invoked.get(e["op"], e["t"] - view.t0), e["t"] - view.t0,
                        e.get("type") == "ok", e)
    return None


def _done_or_fail(exp: Expectation, view: RunView, window: str) -> tuple[Done | None,
                                                                         Check | None]:
    done = action_done(view, window)
    if done is None:
        return None, exp.failed(f"action {window} is not in the history")
    if not done.ok:
        return None, exp.failed(f"action {window} failed: {done.facts.get('error')}")
    return done, None


@dataclass(frozen=True)
class CatchesUpAfter(Expectation):
    """Within ``within_s`` of a node action (``node-join``, ``node-env``) its node holds every
    envelope acknowledged before the action completed: a newcomer, or a node whose
    replication was just turned on, catches up; the final stores then show everything
    (history-set)."""

    window: str
    within_s: float = 20.0

    @property
    def name(self) -> str:
        return f"catches-up-after({self.window})"

    def check(self, view: RunView) -> Check:
        done, bad = _done_or_fail(self, view, self.window)
        if bad:
            return bad
        assert done is not None
        node = str(done.facts["node"])
        wanted = view.acked_max(done.completed)
        hit = view.first_caught_up(wanted, done.completed, [node])
        details = {"action_done_s": round(done.completed, 3), "wanted": wanted}
        if hit is None or hit.t - done.completed > self.within_s:
            last = view.sample_at(done.completed + self.within_s)
            lag = behind(last.clock(node) if last else None, wanted)
            late = f" (only after {hit.t - done.completed:.1f}s)" if hit else ""
            return self.failed(f"{node} did not catch up within {self.within_s:g}s of "
                               f"{self.window}: behind {lag or 'no sample'}{late}", **details)
        view.metrics.setdefault("caught_up_after_s", {})[self.window] = round(
            hit.t - done.completed, 3)
        return self.passed(f"{node} held everything acknowledged before {self.window} "
                           f"{hit.t - done.completed:.1f}s after it ({wanted})", **details)


@dataclass(frozen=True)
class LeaverNotFollowed(Expectation):
    """Once the leaver is out of the canonical set, every canonical node stops following it
    (its health says so within the leave's bound), and none of the envelopes published to it
    afterwards reaches a canonical node's store."""

    window: str

    @property
    def name(self) -> str:
        return f"leaver-not-followed({self.window})"

    def check(self, view: RunView) -> Check:
        done, bad = _done_or_fail(self, view, self.window)
        if bad:
            return bad
        assert done is not None
        leaver = str(done.facts["node"])
        after = {(int(o), int(s)): d for o, s, d in done.facts.get("after_leave", [])}
        if not after:
            return self.failed(f"nothing was published to {leaver} after it left: the check "
                               "would be vacuous")
        reached = {n: sorted(k for k in after if k in store)
                   for n, store in view.stores.items() if n != leaver}
        reached = {n: keys for n, keys in reached.items() if keys}
        following = done.facts.get("still_following") or []
        details = {"after_leave": len(after), "reached": {n: len(k) for n, k in reached.items()},
                   "still_following": following,
                   "unfollowed_after_s": done.facts.get("unfollowed_after_s")}
        if leaver in view.nodes:
            return self.failed(f"{leaver} is still canonical at the end", **details)
        if following or reached:
            where = "; ".join(f"{n} holds {len(k)} of them (e.g. {k[0][0]}:{k[0][1]})"
                              for n, k in sorted(reached.items()))
            still = f"still following {leaver}: {', '.join(following)}" if following else ""
            return self.failed(f"{leaver} was replicated from after it left: "
                               f"{'; '.join(x for x in (still, where) if x)}", **details)
        return self.passed(f"every canonical node stopped following {leaver} "
                           f"{done.facts.get('unfollowed_after_s')}s after it left; none of the "
                           f"{len(after)} envelopes it took afterwards reached them", **details)


@dataclass(frozen=True)
class SettlesAfterChurn(Expectation):
    """Payer reports keep settling across the churn: within ``within_s`` every envelope
    acknowledged by the final canonical nodes is inside a report settled on-chain; each
    originator's last settled report names the final canonical set as its nodes and was
    submitted with the signatures of a quorum (n/2+1) of that set (PayerReportSubmitted);
    each ``joined`` node signed some settled report and had its own reports settled."""

    joined: tuple[str, ...]
    within_s: float = 60.0

    @property
    def name(self) -> str:
        return "settles-after-churn"

    def check(self, view: RunView) -> Check:
        final = set(view.nodes.values())
        wanted = {o: s for o, s in view.acked_max(float("inf")).items() if o in final}
        if not wanted:
            return self.failed("the final canonical nodes acknowledged nothing")
        chain = chain_of(run_record(view))
        covered = wait_chain_covers(chain, wanted, self.within_s)
        manager = chain.contracts.payer_report_manager
        signed_by = {(int(e["args"]["originatorNodeId"]), int(e["args"]["payerReportIndex"])):
                     {int(n) for n in e["args"]["signingNodeIds"]}
                     for e in manager.events.PayerReportSubmitted().get_logs(from_block=0)}
        settled = {o: [(i, r) for i, r in enumerate(chain.payer_reports(o)) if r.is_settled]
                   for o in wanted}
        problems = [f"not settled within {self.within_s:g}s: {line}"
                    for line in short_of(covered, wanted)]
        problems += _last_report_problems(settled, signed_by, final)
        for name in self.joined:
            node_id = view.nodes.get(name)
            if node_id is None:
                problems.append(f"{name} is not canonical at the end")
                continue
            if not settled.get(node_id):
                problems.append(f"no report of {name}'s own envelopes settled")
            if not any(node_id in signed_by.get((o, i), set())
                       for o, rs in settled.items() for i, _ in rs):
                problems.append(f"{name} signed no settled report")
        details = {"acked_max": wanted, "settled": covered, "quorum": len(final) // 2 + 1,
                   "settled_reports": {str(o): len(rs) for o, rs in settled.items()}}
        if problems:
            return self.failed(problems[0] + (f" (and {len(problems) - 1} more)"
                                              if len(problems) > 1 else ""),
                               problems=problems, **details)
        return self.passed(f"{sum(len(r) for r in settled.values())} reports settled for "
                           f"originators {sorted(wanted)}; the last ones name {sorted(final)} "
                           f"and carry a quorum of them; {', '.join(self.joined)} signed too",
                           **details)


def _last_report_problems(settled: dict[int, list[tuple[int, Any]]],
                          signed_by: dict[tuple[int, int], set[int]], final: set[int]
                          ) -> list[str]:
    """Each originator's last settled report is for ``final`` and signed by a quorum of it."""
    quorum = len(final) // 2 + 1
    problems = []
    for o, reports in sorted(settled.items()):
        if not reports:
            continue
        index, report = reports[-1]
        signers = signed_by.get((o, index), set())
        if set(report.node_ids) != final:
            problems.append(f"originator {o}'s last settled report (index {index}) names nodes "
                            f"{sorted(report.node_ids)}, not the canonical {sorted(final)}")
        elif len(signers & final) < quorum:
            problems.append(f"originator {o}'s last settled report (index {index}) was signed "
                            f"by {sorted(signers)}: fewer than {quorum} of {sorted(final)}")
    return problems
