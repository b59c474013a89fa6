"""A chain fault: `pyinfra INVENTORY faults/chain.py --data kind=reorg --data depth=3`
(kinds: mining-stop, reorg, chain-latency)."""

from pyinfra import host

from shakedown.faults.operations import fault_from_data

fault_from_data(host)
