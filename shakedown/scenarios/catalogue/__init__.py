"""The scenario catalogue: one module per scenario, each exporting ``SCENARIO``.

A module's docstring states the scenario's steps; it becomes ``Scenario.steps``. Names are
the modules' names with ``-`` for ``_`` (``chaos_node_down`` -> ``chaos-node-down``).

    names()          # every scenario name, in catalogue order
    get("smoke")     # the Scenario; ConfigError naming the known ones for an unknown name
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from functools import cache

from shakedown.errors import ConfigError
from shakedown.scenarios.api import Scenario

# The order `shakedown list` and `run --all` use: fast and fault-free first.
ORDER = ("smoke", "sync-verification", "load-progression", "chaos-node-down", "chaos-latency",
         "chaos-bandwidth-throttle", "chaos-connection-reset", "chaos-network-partition",
         "chaos-compound-fault", "gateway-scale", "partition-recovery", "thundering-herd",
         "payer-lifecycle", "multi-payer", "settlement-verification", "rate-registry-change",
         "chaos-attestation-fault", "stuck-state-detection", "sustained-load",
         "invalid-envelope-fuzz", "api-flood", "slow-subscriber", "disconnect", "byzantine-peer",
         "lying-reporter", "propagation", "burst-no-sync", "server-restart",
         "latency-tiers", "clock-skew", "churn", "aggressive-chaos", "random-chaos")


@cache
def catalogue() -> dict[str, Scenario]:
    """Every scenario of this package by name."""
    found: dict[str, Scenario] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if not isinstance(scenario, Scenario):
            continue
        expected = info.name.replace("_", "-")
        if scenario.name != expected:
            raise ConfigError(f"{module.__name__}: SCENARIO is named {scenario.name!r}, "
                              f"expected {expected!r}")
        steps = (module.__doc__ or "").strip()
        found[scenario.name] = dataclasses.replace(scenario, steps=steps)
    rank = {name: k for k, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def names() -> list[str]:
    return list(catalogue())


def get(name: str) -> Scenario:
    """The scenario called ``name``; ConfigError with the known names otherwise."""
    try:
        return catalogue()[name]
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(names())}") from None
