"""``python -m shakedown.faults.expire LEDGER ENTRY_ID``: heal one fault at its expiry.

Started detached by the injector on the host that carries the fault, so the fault goes away
by itself even when no controller is alive. It reads only the host ledger; if the entry was
cleared meanwhile it does nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shakedown.faults.docker import heal_entry
from shakedown.faults.ledger import Ledger


def main(argv: list[str]) -> int:
    ledger, entry_id = Ledger(Path(argv[0])), argv[1]
    while True:
        entry = ledger.get(entry_id)
        if entry is None or not entry.open:
            return 0
        left = (entry.expires_at or 0) - time.time()
        if left <= 0:
            break
        time.sleep(min(left, 5.0))  # re-read now and then: a clear may make this moot
    healed = heal_entry(ledger, entry_id, by="ttl")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} ttl expired: {healed.summary() if healed else entry_id}", flush=True)
    return 0 if healed is None or not healed.open else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
