"""Each fault's effect, observed for real on a deployed testnet, then healed.

Timing assertions are lower bounds a fault guarantees (a 500 ms toxic cannot deliver sooner),
never upper bounds on how fast this machine is.
"""

from __future__ import annotations

import time

import docker
import grpc
import pytest
from web3 import Web3

from refnode.proto import refnode_pb2 as pb
from shakedown.chain.ops import Chain
from shakedown.chain.records import ContractAddresses
from shakedown.client import NodeClient
from shakedown.errors import ConfigError, FaultError
from shakedown.faults import Injector
from shakedown.faults.docker import netem_available
from shakedown.faults.ops import container_pid
from shakedown.keys import admin_account
from shakedown.model import Testnet
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net
from tests.faults.observe import clock, connect_outcome, never, publish, read_throughput


def nodes(net: Net) -> dict[str, dict]:  # type: ignore[type-arg]
    return {n["name"]: n for n in net.record()["nodes"]}


def converged(net: Net) -> None:
    """Every node's vector clock equals every other's (within 60 s)."""
    dsns = [n["dsn"] for n in nodes(net).values()]
    wait_for(lambda: [clock(d) for d in dsns], lambda cs: all(c == cs[0] for c in cs),
             timeout=60, interval=0.3, what="vector clocks converge")


def test_latency_toxic_delays_replication(net: Net, inj: Injector) -> None:
    n = nodes(net)
    publish(n["node-100"], 1)
    converged(net)
    inj.apply("latency", "node-100", {"latency_ms": 800})
    target = clock(n["node-100"]["dsn"])[100] + 1
    sent = time.monotonic()
    publish(n["node-100"], 1)
    wait_for(lambda: clock(n["node-200"]["dsn"]).get(100, 0), lambda s: s >= target,
             timeout=30, interval=0.02, what="node-200 receives node 100's envelope")
    assert time.monotonic() - sent >= 0.75, "replication crossed an 800 ms toxic in < 750 ms"


def test_bandwidth_toxic_caps_throughput(net: Net, inj: Injector, testnet: Testnet) -> None:
    gateway = testnet.container("gateway")
    dsn = f"postgresql://postgres:{testnet.db_password}@proxy:20100/node_100"
    inj.apply("bandwidth", "db", {"rate_kbps": 250})  # on every node-to-database proxy
    rate = read_throughput(gateway, dsn, 500_000)
    assert rate <= 250 * 1024 * 1.25, f"{rate / 1024:.0f} KB/s through a 250 KB/s toxic"


def test_tbf_shapes_egress(net: Net, inj: Injector, testnet: Testnet) -> None:
    gateway = testnet.container("gateway")
    dsn = f"postgresql://postgres:{testnet.db_password}@db:5432/node_100"
    inj.apply("tbf", "db", {"rate_kbit": 4000})
    rate = read_throughput(gateway, dsn, 1_000_000)
    assert rate <= 4000 / 8 * 1000 * 1.25, f"{rate * 8 / 1000:.0f} kbit/s through 4000 kbit tbf"


def test_reset_peer_resets_connections(net: Net, inj: Injector, testnet: Testnet) -> None:
    gateway = testnet.container("gateway")
    assert connect_outcome(gateway, "proxy", 10100) == "data"
    inj.apply("reset-peer", "node-100", {"timeout_ms": 0})
    assert connect_outcome(gateway, "proxy", 10100) == "reset"


def test_blackhole_stops_replication_and_heal_catches_up(net: Net, inj: Injector) -> None:
    n = nodes(net)
    converged(net)
    entry = inj.apply("blackhole", "node-300")
    before = clock(n["node-100"]["dsn"]).get(300, 0)
    publish(n["node-300"], 20)  # the host still reaches it directly
    publish(n["node-100"], 20)
    leaked = never(lambda: clock(n["node-100"]["dsn"]).get(300, 0) > before, within=3)
    assert not leaked, "node-100 received node 300's envelopes through a blackhole"
    assert clock(n["node-300"]["dsn"]).get(100, 0) < clock(n["node-100"]["dsn"])[100]
    inj.clear(entry)
    converged(net)


def test_partition_cuts_only_across_groups(net: Net, inj: Injector) -> None:
    n = nodes(net)
    converged(net)
    inj.apply("partition", "node-100", {"others": "node-200"})
    base = {k: clock(n[k]["dsn"]) for k in n}
    publish(n["node-100"], 10)
    publish(n["node-200"], 10)
    wait_for(lambda: clock(n["node-300"]["dsn"]),
             lambda c: c.get(100, 0) >= base["node-100"].get(100, 0) + 10
             and c.get(200, 0) >= base["node-200"].get(200, 0) + 10,
             timeout=30, interval=0.2, what="node-300 gets both sides")
    assert not never(lambda: clock(n["node-200"]["dsn"]).get(100, 0) > base["node-200"].get(100, 0)
                     or clock(n["node-100"]["dsn"]).get(200, 0) > base["node-100"].get(200, 0),
                     within=2), "envelopes crossed the partition"
    inj.clear_all()
    converged(net)


def test_kill_then_clear_restarts_and_catches_up(net: Net, inj: Injector,
                                                 docker_client: docker.DockerClient,
                                                 testnet: Testnet) -> None:
    n = nodes(net)
    inj.apply("kill", "node-200")
    c = docker_client.containers.get(testnet.container("node-200"))
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    publish(n["node-100"], 10)
    inj.clear_all()
    with NodeClient(n["node-200"]["grpc"], timeout=5) as client:
        wait_for(client.health, bool, timeout=60, interval=0.3, what="node-200 serves again")
    converged(net)


def test_pause_freezes_then_unpause_serves(net: Net, inj: Injector) -> None:
    n = nodes(net)
    inj.apply("pause", "node-200")
    with NodeClient(n["node-200"]["grpc"], timeout=1) as client:
        with pytest.raises(grpc.RpcError) as frozen:
            client.health()
        assert frozen.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        inj.clear_all()
        wait_for(client.health, bool, timeout=30, interval=0.2, what="node-200 answers")


def test_clock_skew_shows_in_originator_time(net: Net, inj: Injector) -> None:
    n = nodes(net)
    inj.apply("clock-skew", "node-200", {"offset_s": 7200})
    with NodeClient(n["node-200"]["grpc"], timeout=5) as client:
        wait_for(client.health, bool, timeout=60, interval=0.3, what="skewed node-200 serves")
    (acked,) = publish(n["node-200"], 1)
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(acked.unsigned_originator_envelope)
    skew = unsigned.originator_ns / 1e9 - time.time()
    assert 7100 < skew < 7300, f"node-200's originator time is {skew:.0f} s off, not ~7200"
    inj.clear_all()
    with NodeClient(n["node-200"]["grpc"], timeout=5) as client:
        wait_for(client.health, bool, timeout=60, interval=0.3, what="node-200 back")
    (acked,) = publish(n["node-200"], 1)
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(acked.unsigned_originator_envelope)
    assert abs(unsigned.originator_ns / 1e9 - time.time()) < 60


def test_reorg_changes_the_head_and_keeps_state(net: Net, inj: Injector) -> None:
    w3 = Web3(Web3.HTTPProvider(net.record()["chain"]["rpc"]))
    head = w3.eth.get_block("latest")
    chain = Chain(w3, ContractAddresses.from_dict(net.record()["contracts"]), admin_account())
    canonical = chain.canonical_node_ids()
    entry = inj.apply("reorg", "chain", {"depth": 2})
    assert entry.state == "cleared"  # nothing stays behind to clear
    new = w3.eth.get_block(head.number)
    assert new.hash != head.hash, "the head block is the same after a reorg"
    assert chain.canonical_node_ids() == canonical


def test_mining_stop_leaves_transactions_pending(net: Net, inj: Injector) -> None:
    w3 = Web3(Web3.HTTPProvider(net.record()["chain"]["rpc"]))
    inj.apply("mining-stop")
    start = w3.eth.block_number
    sender = admin_account()
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[5], "to": sender.address, "value": 1})
    assert not never(lambda: w3.eth.block_number > start, within=1.5), "a block was mined"
    inj.clear_all()
    w3.provider.make_request("evm_mine", [])  # the pending transaction goes in now
    assert w3.eth.wait_for_transaction_receipt(tx, timeout=30).status == 1


def test_db_stop_fails_publishes_until_cleared(net: Net, inj: Injector) -> None:
    n = nodes(net)
    inj.apply("db-stop")
    with pytest.raises(grpc.RpcError):
        publish(n["node-100"], 1)
    inj.clear_all()
    wait_for(lambda: _publishes(n["node-100"]), bool, timeout=60, interval=0.5,
             what="node-100 publishes after the database is back")


def _publishes(node: dict) -> bool:  # type: ignore[type-arg]
    try:
        return len(publish(node, 1)) == 1
    except grpc.RpcError:
        return False


def test_churn_adds_and_removes_a_node(net: Net, inj: Injector,
                                       docker_client: docker.DockerClient) -> None:
    w3 = Web3(Web3.HTTPProvider(net.record()["chain"]["rpc"]))
    chain = Chain(w3, ContractAddresses.from_dict(net.record()["contracts"]), admin_account())
    entry = inj.apply("churn-add")
    new_id = max(chain.canonical_node_ids())
    assert new_id > 300 and len(chain.canonical_node_ids()) == 4
    name = f"{net.name}-node-{new_id}"
    assert docker_client.containers.get(name).status == "running"
    inj.clear(entry)
    assert chain.canonical_node_ids() == [100, 200, 300]
    assert name not in [c.name for c in docker_client.containers.list(all=True)]
    inj.apply("churn-remove", "node-300")
    assert chain.canonical_node_ids() == [100, 200]
    inj.clear_all()
    assert chain.canonical_node_ids() == [100, 200, 300]


def test_netem_where_the_kernel_has_it_else_says_so(net: Net, inj: Injector,
                                                    testnet: Testnet) -> None:
    container = testnet.container("node-100")
    if netem_available(container_pid(container)):
        entry = inj.apply("netem", "node-100", {"delay_ms": 100, "reorder_pct": 5})
        assert entry.mechanism.startswith("tc netem")
        return
    # This kernel has no sch_netem: kinds only netem can do are refused, naming the module...
    with pytest.raises(FaultError, match="sch_netem"):
        inj.apply("netem", "node-100", {"reorder_pct": 5})
    assert inj.active() == []
    # ...and delay/loss/rate fall back, saying which mechanism they used.
    entry = inj.apply("netem", "node-100", {"delay_ms": 50, "loss_pct": 1, "rate_kbit": 8000})
    assert "no sch_netem" in entry.mechanism and "toxiproxy" in entry.mechanism
    assert "iptables" in entry.mechanism and "tbf" in entry.mechanism


def test_bad_input_is_refused_before_anything_is_written(inj: Injector) -> None:
    before = inj.entries()
    for kind, target, params in [("lag", "node-100", {}),
                                 ("latency", "node-900", {"latency_ms": 1}),
                                 ("latency", "node-100", {"latency": 1}),
                                 ("latency", "node-100", {"latency_ms": "abc"}),
                                 ("blackhole", "chain", {}),
                                 ("latency", "gateway", {"latency_ms": 1})]:
        with pytest.raises(ConfigError):
            inj.apply(kind, target, params)
    assert inj.entries() == before
