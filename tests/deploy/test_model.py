"""The testnet model: inventory data in, a validated frozen model or one-line ConfigError out."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown import keys
from shakedown.deploy.docker import ContainerSpec
from shakedown.deploy.node import _scale_env
from shakedown.errors import ConfigError
from shakedown.model import MAX_NODES, Ports, Testnet, load_inventory
from shakedown.ports import ephemeral_range, free_port_base


def test_defaults_give_the_local_topology() -> None:
    t = Testnet.from_data({"testnet": "sd"})
    assert t.roles == ("chain", "proxy", "db", "node", "gateway")
    assert [n.node_id for n in t.nodes] == [100, 200, 300]
    assert t.ports.nodes == (25010, 25011, 25012) and t.network == "sd-net"
    assert t.container("node-200") == "sd-node-200"
    assert t.nodes[1].proxy_port == 10200 and t.nodes[1].database == "node_200"
    assert t.record_path.parts[-3:] == (".shakedown", "sd", "deployment.json")


def test_roles_come_out_in_deploy_order() -> None:
    assert Testnet.from_data({"roles": ["gateway", "chain"]}).roles == ("chain", "gateway")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"roles": ["chain", "blockchain"]}, "unknown role 'blockchain'"),
        ({"roles": "chain"}, "roles: expected a list"),
        ({"testnet": "Bad Name"}, "testnet name 'Bad Name'"),
        ({"nodes": 0}, "nodes: 0 is outside 1-90"),
        ({"nodes": 91}, "nodes: 91 is outside 1-90"),
        ({"nodes": "three"}, "nodes: expected an integer"),
        ({"port_base": 80}, "port_base: 80 is outside"),
        ({"node_env": {200: {"bad key": "x"}}}, "node_env[200]"),
        ({"images": {"redis": "r:1"}}, "images: unknown image 'redis'"),
        # numbers that int() would bend into something else
        ({"nodes": 3.5}, "nodes: expected an integer, got 3.5"),
        ({"nodes": "3.5"}, "nodes: expected an integer, got '3.5'"),
        ({"nodes": True}, "nodes: expected an integer, got True"),
        ({"nodes": -1}, "nodes: -1 is outside 1-90"),
        ({"nodes": None}, "nodes: expected an integer, got None"),
        ({"port_base": 30000.9}, "port_base: expected an integer, got 30000.9"),
        ({"port_base": "-30000"}, "port_base: expected an integer, got '-30000'"),
        ({"gateways": True}, "gateways: expected an integer, got True"),
        ({"gateways": -1}, "gateways: -1 is outside 0-1"),
        ({"health_timeout": 0}, "health_timeout: 0 is outside 1-3600"),
        ({"health_timeout": 0.5}, "health_timeout: expected an integer, got 0.5"),
        # node ids the testnet does not have
        ({"node_env": {999: {"A": "1"}}}, "node_env: no node 999 in this testnet; its nodes "
                                          "are 100, 200, 300"),
        ({"nodes": 2, "node_env": {"300": {"A": "1"}}}, "no node '300' in this testnet"),
        ({"node_env": {"node-200": {"A": "1"}}}, "node_env: 'node-200' is not a node id"),
        ({"node_env": {200: "A=1"}}, "node_env[200]: expected {NAME: value}"),
    ],
)
def test_bad_data_is_one_line(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^[^\n]+$") as raised:
        Testnet.from_data(data)
    assert message in str(raised.value)


def test_ninety_nodes_get_their_own_keys_ids_and_ports() -> None:
    t = Testnet.from_data({"testnet": "sd", "nodes": MAX_NODES, "port_base": 30000})
    assert [n.node_id for n in t.nodes][-1] == 9000
    ports = list(t.ports.all().values())
    assert len(set(ports)) == len(ports) and max(ports) < 30100  # below the systemd listeners
    signers = {keys.node_signer(n.index).address for n in t.nodes}
    owners = {keys.node_owner(n.index).address for n in t.nodes}
    others = {keys.admin_account().address, *(keys.payer(k).address for k in range(20)),
              *(keys.gateway(k).address for k in range(10))}
    assert len(signers) == len(owners) == MAX_NODES
    assert not (signers & owners) and not ((signers | owners) & others)
    assert keys.node_signer(2).address == keys.anvil_account(12).address  # kept their places
    with pytest.raises(ConfigError, match=f"node signer #{MAX_NODES}: the pool holds 90"):
        keys.node_signer(MAX_NODES)


def test_integer_fields_take_ints_and_digit_strings() -> None:
    """pyinfra's ``--data nodes=2`` gives a string of digits: that is an integer."""
    t = Testnet.from_data({"nodes": "2", "port_base": 30000, "health_timeout": " 60 "})
    assert len(t.nodes) == 2 and t.ports.chain == 30000 and t.health_timeout == 60


def test_node_env_is_per_node() -> None:
    t = Testnet.from_data({"node_env": {"200": {"REFNODE_LOG_LEVEL": "DEBUG"}}})
    assert [n.env for n in t.nodes] == [(), (("REFNODE_LOG_LEVEL", "DEBUG"),), ()]


def test_load_inventory_reads_hosts_with_testnet_data(tmp_path: Path) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text("hosts = [('@local', {'testnet': 'a', 'nodes': 1}), 'other']\n"
                   "more = ([('@local/b', {'port_base': 30000})], {'testnet': 'b'})\n")
    assert [t.name for t in load_inventory(inv)] == ["a", "b"]
    with pytest.raises(ConfigError, match="inventory not found"):
        load_inventory(tmp_path / "none.py")
    (tmp_path / "empty.py").write_text("hosts = ['@local']\n")
    with pytest.raises(ConfigError, match="no host carries testnet data"):
        load_inventory(tmp_path / "empty.py")


def test_spec_hash_follows_every_setting_and_secrets_stay_masked() -> None:
    spec = ContainerSpec(testnet="sd", service="node-100", image="img:1", network="sd-net",
                         env=(("A", "1"),), secret_env=(("KEY", "0xsecret"),))
    assert spec.digest() == ContainerSpec(**spec.__dict__).digest()
    assert spec.digest() != ContainerSpec(**{**spec.__dict__, "env": (("A", "2"),)}).digest()
    command = spec.run_command()
    assert "0xsecret" not in command.get_masked_value()
    assert "0xsecret" in command.get_raw_value()
    assert f"shakedown.spec={spec.digest()}" in command.get_raw_value()



def test_beyond_ten_nodes_the_registry_is_read_less_often() -> None:
    assert dict(_scale_env(Testnet.from_data({"nodes": 10}))) == {}
    assert dict(_scale_env(Testnet.from_data({"nodes": 50}))) == {
        "REFNODE_REGISTRY_REFRESH_S": "10"}


def test_port_bases_stay_out_of_the_ephemeral_range(tmp_path: Path) -> None:
    # An outgoing connection may take any ephemeral port between the check and Docker's bind.
    low, high = ephemeral_range()
    for _ in range(50):
        block = Ports.from_base(free_port_base(50), 50).all().values()
        assert all(p < low or p > high for p in block), sorted(block)
    custom = tmp_path / "range"
    custom.write_text("20000\t40000\n")
    assert ephemeral_range(str(custom)) == (20000, 40000)
    assert ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)
