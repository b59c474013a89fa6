"""Faults: inject into a deployed testnet, always removable (DESIGN section 5).

One model over both runtimes: a kind in ``KINDS`` (``kinds.py``) defines its parameters, its
targets and its plan as data once; ``Injector`` validates, writes the ledgers before acting,
and hands the plan to the testnet's backend, the Docker executor (``docker.py``) or the SSH
one (``hosts.py``); ``clear``/``clear_all`` heal from the ledgers alone; a TTL lets the host
heal by itself. ``inventory.py`` finds the backends of an inventory (``read_residue``,
``heal_all``, ``forget_all``).
"""

from shakedown.errors import FaultError
from shakedown.faults.injector import Injector
from shakedown.faults.kinds import KINDS
from shakedown.faults.ledger import Entry

__all__ = ["KINDS", "Entry", "FaultError", "Injector"]
