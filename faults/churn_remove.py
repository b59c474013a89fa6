"""Fault `churn-remove`: `pyinfra INVENTORY faults/churn_remove.py --data target=node-300`.

Parameters come as `--data name=value`; `shakedown fault kinds` lists them.
"""

from pyinfra import host

from shakedown.faults.operations import fault_from_data

fault_from_data(host, "churn-remove")
