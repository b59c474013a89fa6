"""A toxiproxy toxic: `pyinfra INVENTORY faults/toxic.py --data kind=latency
--data target=node-200 --data latency_ms=200` (kinds: latency, bandwidth, slow-close, timeout,
reset-peer, slicer, limit-data, chain-latency, db-latency, db-reset)."""

from pyinfra import host

from shakedown.faults.operations import fault_from_data

fault_from_data(host)
