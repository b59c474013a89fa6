"""Deploy roles for a testnet on a Docker host, driven by pyinfra.

One module per role (chain, proxy, db, node, gateway); ``docker`` holds the runtime's
operations and ``record`` the deployment record. The scripts in deploy/ only call these.
"""

from __future__ import annotations

from typing import Any

from shakedown.model import Testnet


def testnet_of(host: Any) -> Testnet:
    """The validated testnet model of a pyinfra host (reads ``host.data``)."""
    return Testnet.from_data(host.data)
