"""Wait for a condition with a deadline, and say what was last seen when it never held."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from shakedown.errors import ShakedownError, TimeoutExpired

T = TypeVar("T")


class GiveUp(ShakedownError, RuntimeError):
    """Raised by a probe when the condition can never hold (a process exited): stop at once."""


def wait_for(probe: Callable[[], T], until: Callable[[T], bool], *, timeout: float,
             what: str, interval: float = 0.05) -> T:
    """Call ``probe`` until ``until(value)`` holds; on timeout, name ``what`` and the last value.

    A probe that raises counts as "not yet"; its last error is reported on timeout. A probe
    that raises GiveUp ends the wait at once with that error.

    Example: ``wait_for(node.count, lambda n: n >= 100, timeout=30, what="node-200 count")``
    """
    deadline = time.monotonic() + timeout
    last: object = "nothing (never probed)"
    while True:
        try:
            value = probe()
            if until(value):
                return value
            last = value
        except GiveUp:
            raise
        except Exception as e:  # a probe failing is "not yet", reported if it lasts
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise TimeoutExpired(f"{what}: not reached within {timeout:g}s; last seen: {last}")
        time.sleep(interval)
