"""Nothing a fault left behind: toxics, reserved qdiscs and iptables chains, paused containers,
open ledger entries (read by shakedown.faults.residue). On VMs (systemd runtime) the same is
read on every host of the testnet over SSH."""

from pathlib import Path

import pytest

from shakedown.verify.plugin import expect_none
from shakedown.verify.target import Target

pytestmark = pytest.mark.faults


def test_no_fault_left_behind(target: Target, inventory: Path) -> None:
    from shakedown.faults.residue import read_host_residue, read_residue

    testnet = target.testnet
    if testnet.remote_docker:
        pytest.skip(f"{testnet.name} runs on a remote Docker engine; this check reads only "
                    "this machine's engine")
    if not testnet.on_hosts:
        expect_none(read_residue(testnet))
        return
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.ssh import read_hosts

    (group,) = [g for g in host_groups(read_hosts(inventory)) if g.testnet == testnet.name]
    expect_none(read_host_residue(group.targets, testnet.name))
