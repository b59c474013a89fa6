"""Controller-side steps (contract deploy, registration, databases) as pyinfra operations,
and the waits between hosts.

A step is a check and an action. The check runs when pyinfra plans (and again when it
executes), so a second run with everything in place reports no change; the action runs on
the controller as a pyinfra FunctionCommand. A check that cannot reach its service yet counts
as "not done".

Hosts deploy at once (``pyinfra --no-wait``: each host runs its own operations without waiting
for the others at every one), so what one host needs from another is said explicitly: the host
that makes it ``announce``s it, the host that needs it waits ``after`` it. Both change nothing,
so a second run still reports no change; without ``--no-wait`` pyinfra's own order already
holds them.

    announce(name="chain ready", key="sd: chain")          # on the chain's host
    after(name="wait for the chain", what="sd: contracts", ready=lambda: announced("sd: chain"))
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.context import state

from shakedown.errors import ShakedownError, TimeoutExpired
from shakedown.waiting import GiveUp, wait_for


def holds(check: Callable[[], bool]) -> bool:
    """``check()``, with any error (service not up yet) read as False."""
    try:
        return bool(check())
    except Exception:
        return False


@operation()
def step(what: str, done: Callable[[], bool], action: Callable[[], None]):  # type: ignore[no-untyped-def]
    """Run ``action`` on the controller unless ``done()`` already holds."""
    if holds(done):
        host.noop(f"{what}: already done")
        return
    yield FunctionCommand(_run, (what, action), {})


class StepFailed(ShakedownError, RuntimeError):
    """A step's action failed; pyinfra shows its message (it hides TimeoutError's)."""


def _run(what: str, action: Callable[[], None]) -> None:
    try:
        action()
    except ShakedownError as e:
        raise StepFailed(f"{what}: {e}") from e


def _keys(kind: str) -> set[str]:
    """This run's keys of ``kind`` (planned: some host will announce them; announced), kept
    on pyinfra's state so that every run starts with none."""
    found = getattr(state, f"_shakedown_{kind}", None)
    if found is None:
        found = set()
        setattr(state, f"_shakedown_{kind}", found)
    return found


def plan_announcement(key: str) -> None:
    """Say, while the deploy is planned, that a host of this run will announce ``key``."""
    _keys("planned").add(key)


def planned(key: str) -> bool:
    return key in _keys("planned")


def announced(key: str) -> bool:
    """``key`` was announced; GiveUp when the host that was to announce it failed first."""
    if key in _keys("announced"):
        return True
    failed = [h.name for h in state.inventory if state.get_results_for_host(h).error_ops]
    if failed:
        raise GiveUp(f"host {', '.join(failed)} failed before {key}")
    return False


@operation()
def announce(key: str):  # type: ignore[no-untyped-def]
    """Mark ``key`` done for the hosts waiting ``after`` it; changes nothing on any host."""
    if state.is_executing:
        _keys("announced").add(key)
    host.noop(f"{key}: announced")
    yield from ()


@operation()
def after(what: str, ready: Callable[[], bool], timeout: float):  # type: ignore[no-untyped-def]
    """Wait until ``ready()`` holds (another host's work); fail naming ``what`` and what was
    last seen when it does not within ``timeout`` seconds. Changes nothing."""
    if state.is_executing:
        try:
            wait_for(ready, bool, timeout=timeout, interval=0.2, what=what)
        except (TimeoutExpired, GiveUp) as e:
            yield FunctionCommand(_fail, (str(e),), {})
            return
    host.noop(f"{what}: ready")


def _fail(message: str) -> None:
    raise StepFailed(message)
