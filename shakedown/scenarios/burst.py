"""Burst without sync (td-sync): a node with replication off takes a burst, then its
replication is turned on; before that it must really have been cut off.

    NothingPulledBefore("node-env@node-300")
"""

from __future__ import annotations

from dataclasses import dataclass

from shakedown.scenarios.churn import _done_or_fail
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.view import RunView


@dataclass(frozen=True)
class NothingPulledBefore(Expectation):
    """Until ``window`` (a ``node-env`` action turning replication on) completed, its node held
    none of the envelopes other originators acknowledged (its replication really was off), and
    they did acknowledge some."""

    window: str

    @property
    def name(self) -> str:
        return f"nothing-pulled-before({self.window})"

    def check(self, view: RunView) -> Check:
        done, bad = _done_or_fail(self, view, self.window)
        if bad:
            return bad
        assert done is not None
        node = str(done.facts["node"])
        own = view.nodes.get(node)
        others = {o: s for o, s in view.acked_max(done.invoked).items() if o != own}
        if not others:
            return self.failed(f"no other originator acknowledged anything before "
                               f"{self.window}: the check would be vacuous")
        pulled = [(s.t, o, c) for s in view.samples_between(0.0, done.invoked)
                  for o, c in (s.clock(node) or {}).items() if o != own and c > 0]
        if pulled:
            t, o, c = pulled[0]
            return self.failed(f"{node} held {o}:{c} at {t:.1f}s, before {self.window}: its "
                               "replication was not off", others=others)
        return self.passed(f"{node} pulled nothing before {self.window} while the others "
                           f"acknowledged {others}", others=others)
