"""A process fault: `pyinfra INVENTORY faults/process.py --data kind=kill --data target=node-200`
(kinds: stop, kill, pause, restart, db-stop)."""

from pyinfra import host

from shakedown.faults.operations import fault_from_data

fault_from_data(host)
