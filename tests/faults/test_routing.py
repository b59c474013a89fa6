"""Which inventory hosts take faults over SSH, and the services found on them (pure logic:
an inventory file, nothing connected)."""

from __future__ import annotations

from pathlib import Path

from shakedown.faults.hostinv import host_groups, host_services, is_ssh_host
from shakedown.faults.netshell import classes_in, dst_port_match, per_destination
from shakedown.faults.ssh import read_hosts

INVENTORY = """
docker_hosts = [("@local", {"testnet": "sd", "roles": ["chain", "proxy", "db", "node"]})]
vms = ([("vm1", {"address": "10.0.0.1", "roles": ["chain", "proxy", "db", "node", "gateway"]}),
        ("vm2", {"address": "10.0.0.2", "roles": ["proxy", "db", "node"]})],
       {"testnet": "sdvm", "runtime": "systemd", "nodes": 3})
theirs = [("db9.example", {"services": {"pg": "postgresql.service"}})]
"""


def test_the_routing_rule() -> None:
    assert not is_ssh_host("@local", {})
    assert not is_ssh_host("10.0.0.5", {"testnet": "sd", "roles": ["node"]})  # a Docker host
    assert is_ssh_host("10.0.0.5", {"testnet": "sd", "runtime": "systemd"})
    assert is_ssh_host("staging-1", {"ssh_user": "admin"})  # no testnet data: a plain host


def test_services_of_a_systemd_testnet_and_of_hosts_someone_else_deployed(
        tmp_path: Path) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text(INVENTORY)
    services = host_services(inv)
    assert services["node-100"] == ("vm1", "sdvm-node-100.service")
    assert services["node-200"] == ("vm2", "sdvm-node-200.service")
    assert services["node-300"] == ("vm1", "sdvm-node-300.service")
    assert services["chain"] == ("vm1", "sdvm-chain.service")
    assert services["pg"] == ("db9.example", "postgresql.service")
    groups = {g.testnet: [t.name for t in g.targets] for g in host_groups(read_hosts(inv))}
    assert groups == {"sdvm": ["vm1", "vm2"], "shakedown": ["db9.example"]}


def test_a_link_class_filters_proxy_port_and_address() -> None:
    sh = per_destination("eth0", 2, ["tbf", "rate", "4000kbit"],
                         [dst_port_match("172.20.0.3", 10200), "match ip dst 172.20.0.6/32"])
    batch = sh.apply[0]
    assert "match ip dport 10200 0xffff" in batch and "match ip protocol 6 0xff" in batch
    assert batch.count("filter add dev eth0 parent 5d: protocol ip prio 2 u32") == 2
    assert sh.cls == "5d:2"
    assert classes_in("class htb 5d:1 root leaf 5d01: prio 0\nclass htb 5d:a root") == {1, 10}
