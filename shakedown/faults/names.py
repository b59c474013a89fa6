"""Reserved names of every fault artifact; imports nothing of ours.

Clearing touches only what carries these names, so a clear never disturbs Docker's own
iptables chains, someone else's qdiscs, or toxics a user made by hand.
"""

from __future__ import annotations

# iptables: our rules live in this chain of the filter table (inside a node's network
# namespace, or on a VM), jumped to from INPUT and OUTPUT; a clear deletes the jumps and
# the chain, never a whole table.
IPTABLES_CHAIN = "SHAKEDOWN"
# tc: the root qdisc we install on a device has this handle; a clear deletes the root qdisc
# only when its handle is ours.
TC_HANDLE = "5d:"
TC_HANDLE_HEX = "5d"
# toxiproxy: our toxics are named ``sd-<ledger tag>``.
TOXIC_PREFIX = "sd-"
# On the target host: the ledger of faults applied there (one JSON file per testnet).
HOST_STATE_DIR = "/var/lib/shakedown"
HOST_LEDGER_DIR = f"{HOST_STATE_DIR}/faults"
