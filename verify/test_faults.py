"""Nothing a fault left behind: toxics, reserved qdiscs and iptables chains, paused containers,
open ledger entries (read by shakedown.faults.residue). On VMs (systemd runtime) the same is
read on every host of the testnet over SSH, and toxics on each host's toxiproxy; on a remote
Docker host, the ledgers and its toxiproxy."""

from pathlib import Path

import pytest

from shakedown.verify.plugin import expect_none
from shakedown.verify.target import Target

pytestmark = pytest.mark.faults


def test_no_fault_left_behind(target: Target, inventory: Path) -> None:
    from shakedown.faults.residue import read_host_residue, read_residue

    testnet = target.testnet
    if not testnet.on_hosts:
        expect_none(read_residue(testnet))
        return
    from shakedown.deploy.record import load_record
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.residue import proxy_residue
    from shakedown.faults.ssh import read_hosts

    (group,) = [g for g in host_groups(read_hosts(inventory)) if g.testnet == testnet.name]
    proxies = (load_record(testnet.record_path) or {}).get("proxies", {})
    expect_none([*read_host_residue(group.targets, testnet.name),
                 *(f"{host}: {line}" for host, api in proxies.items()
                   for line in proxy_residue(api))])
