"""The one adapter between the chaos engine and the fault injector.

Everything the engine (and, through the runner, its final heal) does to a fault goes through
``ChaosFaults``: ``apply(kind, target, params, ttl)`` returns the ledger entry, ``clear(entry)``
undoes one, ``clear_all()`` undoes what the ledgers still hold. Today it calls
``shakedown.faults.Injector``; switching to another fault model is a change here only. Every
fault gets a TTL, so none outlives a crashed engine.

    faults = ChaosFaults.for_testnet(net.model)
    entry = faults.apply("stop", "node-300", {}, ttl=400)
    faults.clear(entry)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shakedown.errors import ConfigError
from shakedown.model import Testnet


class ChaosFaults:
    def __init__(self, injector: Any):
        self._injector = injector

    @classmethod
    def for_testnet(cls, testnet: Testnet) -> ChaosFaults:
        from shakedown.faults import Injector

        return cls(Injector.for_testnet(testnet))

    def apply(self, kind: str, target: str, params: Mapping[str, Any], ttl: float) -> Any:
        """Apply one fault with a TTL; raises ShakedownError when it could not be applied
        (nothing then stays half-applied)."""
        if ttl <= 0:
            raise ConfigError(f"{kind} on {target}: a chaos fault needs a positive TTL")
        return self._injector.apply(kind, target, dict(params), ttl=ttl)

    def clear(self, entry: Any) -> Any:
        return self._injector.clear(entry)

    def clear_all(self) -> list[Any]:
        return list(self._injector.clear_all())
