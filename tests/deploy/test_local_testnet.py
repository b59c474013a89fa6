"""End to end on the real Docker engine: ``shakedown up | status | down`` through pyinfra.

Steps share one testnet (module fixture) and run in file order: up -> registered and serving
-> publish 100 envelopes to node 100 -> replicated to every node -> re-run changes nothing ->
status -> a changed node setting recreates only that node -> a second testnet side by side ->
down leaves nothing. Bad inputs need no testnet.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import docker
import psycopg
import pytest
from web3 import Web3

from refnode.envelopes import Signer
from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.client import NodeClient, payer_envelopes
from shakedown.deploy.docker import LABEL_TESTNET
from shakedown.keys import admin_account, node_signer, payer
from shakedown.observe import read_envelope_count, read_vector_clock
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net, leftovers, run_cli, write_inventory

SERVICES = {"chain", "proxy", "db", "node-100", "node-200", "node-300", "gateway"}


def container_ids(client: docker.DockerClient, net: Net) -> dict[str, str]:
    found = client.containers.list(all=True, filters={"label": f"{LABEL_TESTNET}={net.name}"})
    return {c.name.removeprefix(f"{net.name}-"): c.id for c in found}


def chain_of(net: Net) -> Chain:
    record = net.record()
    w3 = Web3(Web3.HTTPProvider(record["chain"]["rpc"], request_kwargs={"timeout": 10}))
    return Chain(w3, ContractAddresses.from_dict(record["contracts"]), admin_account())


def db_state(dsn: str) -> tuple[int, dict[int, int]]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return read_envelope_count(conn), read_vector_clock(conn)


def test_up_registers_nodes_at_their_proxy_and_serves(testnet: Net,
                                                      docker_client: docker.DockerClient) -> None:
    assert set(container_ids(docker_client, testnet)) == SERVICES
    named = docker_client.containers.list(all=True, filters={"name": f"{testnet.name}-"})
    assert all(c.labels.get(LABEL_TESTNET) == testnet.name for c in named)
    chain = chain_of(testnet)
    assert chain.canonical_node_ids() == [100, 200, 300]
    for k, node in enumerate(testnet.record()["nodes"]):
        on_chain = chain.get_node(node["node_id"])
        assert on_chain.signer == node_signer(k).address
        assert on_chain.http_address == node["http_address"] == f"proxy:{10000 + node['node_id']}"
        assert node["grpc"].startswith("127.0.0.1:") and node["grpc_internal"]
        with NodeClient(node["grpc"], timeout=5) as client:
            client.health()


def test_every_port_is_published_on_loopback_only(testnet: Net,
                                                  docker_client: docker.DockerClient) -> None:
    for c in docker_client.containers.list(filters={"label": f"{LABEL_TESTNET}={testnet.name}"}):
        for bindings in c.attrs["HostConfig"]["PortBindings"].values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), c.name


def test_published_envelopes_replicate_to_every_node(testnet: Net) -> None:
    nodes = testnet.record()["nodes"]
    before = {n["node_id"]: db_state(n["dsn"])[1].get(100, 0) for n in nodes}
    with NodeClient(nodes[0]["grpc"], timeout=30) as client:
        acked = client.publish(payer_envelopes(Signer(bytes(payer(0).key)), 100, 100))
    assert len(acked) == 100
    target = before[100] + 100
    for node in nodes:
        wait_for(lambda n=node: db_state(n["dsn"]), lambda s: s[1].get(100, 0) >= target,
                 timeout=60, interval=0.3, what=f"{node['name']} holds node 100's envelopes")
        count, clock = db_state(node["dsn"])
        assert clock[100] == target and count >= target, f"{node['name']}: {count} {clock}"


def test_second_up_changes_nothing(testnet: Net, docker_client: docker.DockerClient) -> None:
    ids = container_ids(docker_client, testnet)
    again = run_cli("up", "-i", str(testnet.inventory))
    assert again.returncode == 0, again.stderr
    assert " 0 changed" in again.stdout, again.stdout
    assert container_ids(docker_client, testnet) == ids


def test_status_shows_health_head_and_clocks(testnet: Net) -> None:
    status = run_cli("status", "-i", str(testnet.inventory))
    assert status.returncode == 0, status.stdout + status.stderr
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
    assert set(lines) == SERVICES
    assert "head " in lines["chain"]
    for name in ("node-100", "node-200", "node-300"):
        assert " ok " in lines[name] and "envelopes 100" in lines[name], lines[name]
        assert "100:100" in lines[name], lines[name]


def test_changed_node_setting_recreates_only_that_node(
        testnet: Net, docker_client: docker.DockerClient) -> None:
    ids = container_ids(docker_client, testnet)
    write_inventory(testnet, {**testnet.data, "node_env": {200: {"REFNODE_LOG_LEVEL": "DEBUG"}}})
    changed = run_cli("up", "-i", str(testnet.inventory))
    assert changed.returncode == 0, changed.stderr
    now = container_ids(docker_client, testnet)
    assert {s for s in SERVICES if now[s] != ids[s]} == {"node-200"}
    env = docker_client.containers.get(now["node-200"]).attrs["Config"]["Env"]
    assert "REFNODE_LOG_LEVEL=DEBUG" in env


@pytest.mark.long
def test_two_testnets_live_side_by_side(testnet: Net, make_net: Callable[..., Net],
                                        docker_client: docker.DockerClient) -> None:
    first_ids = container_ids(docker_client, testnet)
    other = make_net(prefix="sdt2", nodes=1, gateways=0)
    try:
        up = run_cli("up", "-i", str(other.inventory))
        assert up.returncode == 0, up.stderr
        assert set(container_ids(docker_client, other)) == {"chain", "proxy", "db", "node-100"}
        assert chain_of(other).canonical_node_ids() == [100]
        node = other.record()["nodes"][0]
        assert db_state(node["dsn"])[0] == 0  # its own database, not the first testnet's
    finally:
        down = run_cli("down", "-i", str(other.inventory))
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_client, other.name) == []
    assert container_ids(docker_client, testnet) == first_ids


def test_down_leaves_nothing(testnet: Net, docker_client: docker.DockerClient) -> None:
    down = run_cli("down", "-i", str(testnet.inventory))
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_client, testnet.name) == []
    assert not testnet.record_path.exists()


# -- bad input: one line, non-zero exit, nothing applied ------------------------------------


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shakedown: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_missing_inventory_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(run_cli("up", "-i", str(tmp_path / "nope.py")))
    assert "inventory not found" in line


def test_unknown_role_is_one_line(make_net: Callable[..., Net],
                                  docker_client: docker.DockerClient) -> None:
    net = make_net(roles=["chain", "blockchain"])
    line = _one_line_error(run_cli("up", "-i", str(net.inventory)))
    assert "unknown role 'blockchain'" in line
    assert leftovers(docker_client, net.name) == []


def test_unreachable_docker_is_one_line(make_net: Callable[..., Net]) -> None:
    net = make_net()
    line = _one_line_error(run_cli("up", "-i", str(net.inventory),
                                   env={"DOCKER_HOST": "tcp://127.0.0.1:1"}))
    assert "Docker engine" in line


def test_port_clash_is_one_line(make_net: Callable[..., Net],
                                docker_client: docker.DockerClient) -> None:
    net = make_net()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", net.port_base + 2))
        squatter.listen()
        line = _one_line_error(run_cli("up", "-i", str(net.inventory)))
    assert f"127.0.0.1:{net.port_base + 2}" in line and "db" in line
    assert leftovers(docker_client, net.name) == []


def test_missing_image_is_one_line(make_net: Callable[..., Net],
                                   docker_client: docker.DockerClient) -> None:
    net = make_net(images={"node": "shakedown/absent:0", "anvil": "shakedown/absent:0",
                           "postgres": "shakedown/absent:0"})
    line = _one_line_error(run_cli("up", "-i", str(net.inventory)))
    assert "shakedown/absent:0" in line
    assert leftovers(docker_client, net.name) == []


@pytest.mark.parametrize("command", ["status", "down"])
def test_commands_on_missing_inventory_fail_cleanly(command: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _one_line_error(run_cli(command, "-i", str(tmp_path / "missing.py")))
