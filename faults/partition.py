"""Fault `partition`: `pyinfra INVENTORY faults/partition.py --data target=... [--data ttl=60s]`.

Parameters come as `--data name=value`; `shakedown fault kinds` lists them.
"""

from pyinfra import host

from shakedown.faults.operations import fault_from_data

fault_from_data(host, "partition")
