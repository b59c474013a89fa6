"""Nothing a fault left behind: toxics, reserved qdiscs and iptables chains, paused containers,
open ledger entries (read by shakedown.faults.residue)."""

import pytest

from shakedown.verify.plugin import expect_none
from shakedown.verify.target import Target

pytestmark = pytest.mark.faults


def test_no_fault_left_behind(target: Target) -> None:
    from shakedown.faults.residue import read_residue

    expect_none(read_residue(target.testnet))
