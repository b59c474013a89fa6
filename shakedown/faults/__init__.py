"""Faults: inject into a deployed testnet, always removable (DESIGN section 5).

``Injector`` applies a fault kind from ``KINDS`` to a target and records it, with its undo,
in the ledgers before acting; ``clear``/``clear_all`` heal from the ledgers alone; a TTL lets
the host heal by itself. ``read_residue`` lists anything a fault left behind.

SSH hosts (VMs, systemd testnets): ``hosts.HostInjector``, with hosts and services found by
``hostinv``; ``forget`` removes closed ledgers at teardown.
"""

from shakedown.errors import FaultError
from shakedown.faults.injector import Injector
from shakedown.faults.kinds import KINDS
from shakedown.faults.ledger import Entry

__all__ = ["KINDS", "Entry", "FaultError", "Injector"]
