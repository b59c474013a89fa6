"""Controller-side steps (contract deploy, registration, databases) as pyinfra operations.

A step is a check and an action. The check runs when pyinfra plans (and again when it
executes), so a second run with everything in place reports no change; the action runs on
the controller as a pyinfra FunctionCommand. A check that cannot reach its service yet counts
as "not done".
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host
from pyinfra.api import FunctionCommand, operation

from shakedown.errors import ShakedownError


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
