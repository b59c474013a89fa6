"""Clear every open fault of the inventory's testnets, from the ledgers alone (works after
the injector was killed): `pyinfra INVENTORY faults/clear.py`. On SSH hosts each host clears
its own open faults (read from its ledger and the controller's)."""

from pyinfra import host

from shakedown.faults.operations import clear_from_data

clear_from_data(host)
