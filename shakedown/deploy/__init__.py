"""Deploy roles for a testnet, driven by pyinfra: containers on a Docker host (``docker``) or
systemd units on VMs (``systemd``).

One module per role (chain, proxy, db, node, gateway) says what the role runs, once, and how
each runtime runs it; ``docker`` and ``systemd`` hold the runtimes' operations and ``record``
the deployment record. The scripts in deploy/ only call these.
"""

from __future__ import annotations

from typing import Any

from shakedown.model import Testnet, testnets_of, with_group_roles


def testnet_of(host: Any) -> Testnet:
    """The validated testnet model of a pyinfra host (reads ``host.data``); for a systemd
    testnet, the whole of it, read from every inventory host of the same testnet."""
    if host.data.get("runtime") != "systemd":
        return Testnet.from_data(host.data)
    from pyinfra import inventory

    name = host.data.get("testnet")
    peers = [(h.name, with_group_roles(h.data.dict(), h.groups)) for h in inventory
             if h.data.get("runtime") == "systemd" and h.data.get("testnet") == name]
    return testnets_of(peers, "pyinfra inventory")[0]
