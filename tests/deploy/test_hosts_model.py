"""A systemd testnet over inventory hosts: placement, addresses, units and the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown.deploy.record import build_record
from shakedown.deploy.systemd import UnitSpec
from shakedown.errors import ConfigError
from shakedown.model import Testnet, load_inventory

REPO = Path(__file__).resolve().parents[2]
GROUP = {"testnet": "vm", "runtime": "systemd", "nodes": 4, "port_base": 26000}
HOSTS = [("a", {**GROUP, "address": "10.0.0.1", "roles": ["chain", "db", "node", "gateway"]}),
         ("b", {**GROUP, "address": "10.0.0.2", "roles": ["proxy", "db", "node"]})]


def test_nodes_go_round_robin_and_dial_each_other_by_host_address() -> None:
    t = Testnet.from_hosts(HOSTS)
    assert t.on_hosts and [(n.name, n.host) for n in t.nodes] == [
        ("node-100", "a"), ("node-200", "b"), ("node-300", "a"), ("node-400", "b")]
    a, b = t.nodes[0], t.nodes[1]
    # Host a runs no proxy: its nodes are dialled directly, and dial the chain directly.
    assert t.node_address(a) == "10.0.0.1:26010"
    assert t.chain_rpc_internal(t.host("a")) == "http://10.0.0.1:26000"
    assert t.db_address_internal(a) == "10.0.0.1:26002"
    # Host b fronts its nodes, their databases and the chain with its own proxy.
    assert t.node_address(b) == "10.0.0.2:26101"
    assert t.chain_rpc_internal(t.host("b")) == "http://10.0.0.2:26004"
    assert t.db_address_internal(b) == "10.0.0.2:26201"


def test_the_record_names_hosts_units_and_host_addresses() -> None:
    t = Testnet.from_hosts(HOSTS)
    rec = build_record(t, {"node_registry": "0x1"})
    assert rec["runtime"] == "systemd" and rec["chain"]["rpc"] == "http://10.0.0.1:26000"
    node = rec["nodes"][1]
    assert (node["host"], node["unit"], node["grpc"], node["http_address"]) == (
        "b", "vm-node-200.service", "10.0.0.2:26011", "10.0.0.2:26101")
    assert node["dsn"].endswith("@10.0.0.2:26002/node_200")
    assert rec["proxies"] == {"b": "http://10.0.0.2:26001"}


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ([("a", {**GROUP, "address": "x", "roles": ["chain"]}),
          ("b", {**GROUP, "address": "y", "roles": ["chain", "db", "node"]})],
         "role chain is on a, b; put it on one host"),
        ([("@vagrant/a", {**GROUP, "roles": ["chain", "db", "node"]})],
         "host @vagrant/a: give it an address"),
        ([("a", {**GROUP, "roles": ["chain", "node"]})], "nodes need a host with the db role"),
        ([("a", {**GROUP, "runtime": "podman"})], "runtime 'podman': use one of docker, systemd"),
    ],
)
def test_bad_host_inventories_get_one_line(hosts: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Testnet.from_hosts(hosts)


def test_shipped_vm_inventories_load_as_one_systemd_testnet_each() -> None:
    for name in ("vagrant.py", "staging.example.py"):
        (t,) = load_inventory(REPO / "inventories" / name)
        assert t.runtime == "systemd" and len(t.hosts) == 3
        assert [n.host for n in t.nodes] == [h.name for h in t.hosts]


def test_a_unit_carries_its_spec_hash_and_keeps_secrets_out_of_the_unit_file() -> None:
    spec = UnitSpec("vm", "node-100", ("/opt/x/refnode",), env=(("A", "1 2"),),
                    secret_env=(("KEY", "s3cret"),))
    unit = spec.unit_text()
    assert unit.startswith(f"# shakedown.spec={spec.digest()}\n")
    assert "s3cret" not in unit and "EnvironmentFile=/etc/shakedown/vm/node-100.env" in unit
    assert spec.env_text() == 'A="1 2"\nKEY=s3cret\n'
    changed = UnitSpec("vm", "node-100", ("/opt/x/refnode",), env=(("A", "1 2"),),
                       secret_env=(("KEY", "other"),))
    assert changed.digest() != spec.digest()
    shell = UnitSpec("vm", "db", ("/bin/sh", "-c", "exec $(ls)/postgres"))
    assert 'ExecStart=/bin/sh -c "exec $$(ls)/postgres"' in shell.unit_text()


def test_roles_can_come_from_inventory_groups_named_after_them(tmp_path: Path) -> None:
    inventory = tmp_path / "groups.py"
    inventory.write_text(
        '_net = {"testnet": "g", "runtime": "systemd", "nodes": 2}\n'
        'chain = ([("h1", {"address": "10.0.0.1"})], _net)\n'
        'db = (["h1", ("h2", {"address": "10.0.0.2"})], _net)\n'
        'node = (["h1", "h2"], _net)\n')
    (t,) = load_inventory(inventory)
    assert [(h.name, h.address, h.roles) for h in t.hosts] == [
        ("h1", "10.0.0.1", ("chain", "db", "node")), ("h2", "10.0.0.2", ("db", "node"))]
    assert [(n.name, n.host) for n in t.nodes] == [("node-100", "h1"), ("node-200", "h2")]


def test_the_fault_path_reads_the_same_roles_from_groups(tmp_path: Path) -> None:
    from shakedown.faults.hostinv import host_groups
    from shakedown.faults.ssh import read_hosts

    inventory = tmp_path / "groups.py"
    inventory.write_text(
        '_net = {"testnet": "g", "runtime": "systemd", "nodes": 2}\n'
        'chain = ([("10.0.0.1", {})], _net)\n'
        'db = (["10.0.0.1", "10.0.0.2"], _net)\n'
        'node = (["10.0.0.1", "10.0.0.2"], _net)\n')
    (group,) = host_groups(read_hosts(inventory))
    assert group.resolve("node-200") == ("10.0.0.2", "g-node-200.service")
