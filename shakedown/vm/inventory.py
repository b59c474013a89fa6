"""The pyinfra inventory of a lab's hosts (VM-like containers or qemu VMs): each named by its
address, reached as root with the lab's key, host keys checked against the lab's known_hosts.

    write_inventory(run_dir / "inventory.py", [vm.ssh for vm in lab.vms],
                    {"testnet": "sd", "runtime": "systemd", "nodes": 2},
                    [{"roles": ["chain", "proxy", "db", "node"]},
                     {"roles": ["proxy", "db", "node"]}])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shakedown.faults.ssh import SSHTarget


def write_inventory(path: Path, targets: Sequence[SSHTarget], group: dict[str, object],
                    per_host: list[dict[str, object]] | None = None) -> Path:
    """``group`` as group data, ``per_host[i]`` on host i; the group is called ``sdvm_hosts``."""
    first = targets[0]
    ssh = {"ssh_user": "root", "ssh_key": first.key_file,
           "ssh_known_hosts_file": first.known_hosts, "ssh_strict_host_key_checking": "yes"}
    extra = per_host or [{} for _ in targets]
    hosts = [(t.address, {"address": t.address, **data})
             for t, data in zip(targets, extra, strict=True)]
    path.write_text(f"sdvm_hosts = ({hosts!r}, {({**ssh, **group})!r})\n")
    return path
