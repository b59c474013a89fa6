"""Clear every open fault of the inventory's testnets, from the ledgers alone (works after
the injector was killed): `pyinfra INVENTORY faults/clear.py`."""

from pyinfra import host

from shakedown.faults.operations import clear_from_data

clear_from_data(host)
