"""One root error for all a user can cause; subclasses also inherit the builtin they resemble.

The CLI prints ``str(error)`` as one line and exits non-zero, so messages name the unit, the
value seen and a hint: ``node-200: unknown fault kind 'lag'; known: latency, loss, partition``.
"""


class ShakedownError(Exception):
    """Root of every error shakedown raises on purpose."""


class ConfigError(ShakedownError, ValueError):
    """Bad inventory, bad parameter, unknown name."""


class NotFoundError(ShakedownError, LookupError):
    """A named target (node, proxy, container, record) does not exist."""


class UnreachableError(ShakedownError, ConnectionError):
    """A host, engine or service did not answer."""


class TimeoutExpired(ShakedownError, TimeoutError):
    """A condition did not hold before its deadline; the message says the last value seen."""


class ChainError(ShakedownError, RuntimeError):
    """A contract call reverted or the chain refused a transaction."""


class FaultError(ShakedownError, RuntimeError):
    """A fault could not be applied or cleared (a missing kernel module, a stopped target)."""
