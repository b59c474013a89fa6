"""Nothing a fault left behind: open ledger entries, toxics, stopped or clock-skewed services,
our qdiscs and iptables chain, and any rule or qdisc in a node's network namespace that is not
the default (read by ``shakedown.faults.inventory.read_residue``): in each container of a
Docker testnet; on every host of a VM testnet over SSH, with the toxics of each host's
toxiproxy; on a remote Docker host, the ledgers and its toxiproxy."""

from pathlib import Path

import pytest

from shakedown.verify.plugin import expect_none
from shakedown.verify.target import Target

pytestmark = pytest.mark.faults


def test_no_fault_left_behind(target: Target, inventory: Path) -> None:
    from shakedown.faults.inventory import read_residue

    expect_none(read_residue(target.testnet, inventory))
