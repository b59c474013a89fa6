"""Scheduled actions on the chain and the verify suite: what they do and what the history keeps.

Each returns the facts the history records with the action's completion, so expectations read
them from the history alone (``rates-set`` keeps the rates and their unix start time).

    done = set_rates(record, {"start_in_s": 4, "message_fee": 5000})
    done["start_time"], done["rates"], done["before"]
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shakedown.chain.cli import rate_fields
from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.keys import admin_account
from shakedown.scenarios.verify_suite import run_verify


def chain_of(record: dict[str, Any]) -> Chain:
    """The run's chain with the admin key, from its deployment record."""
    return Chain.connect(record["chain"]["rpc"],
                         ContractAddresses.from_dict(record["contracts"]), admin_account())


def set_rates(record: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Append rates starting ``start_in_s`` from now; the rest of ``params`` are fee fields."""
    chain = chain_of(record)
    before = chain.rates()[-1]
    # Nodes price by their own clocks (as ``shakedown chain rates set`` does): wall time.
    start = math.ceil(time.time() + float(params.get("start_in_s", 5.0)))
    pairs = [f"{k}={v}" for k, v in params.items() if k != "start_in_s"] + [f"start={start}"]
    new = rate_fields(pairs, before, start)
    chain.add_rates(new)
    return {"start_time": new.start_time, "rates": asdict(new), "before": asdict(before)}


def verify_now(inventory: Path, out_dir: Path, label: str, args: list[str]) -> dict[str, Any]:
    """Run the verify suite with ``args`` now; its counts and failing checks for the history."""
    found = run_verify(inventory, out_dir, f"verify-{label}", args, settle_timeout_s=None)
    keep = ("exit_code", "tests", "failures", "errors", "failing", "error")
    return {k: found[k] for k in keep if k in found}
