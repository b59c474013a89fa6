"""The systemd runtime on three SSH hosts (VM-like containers), through the README's commands:
``shakedown up`` over SSH, traffic, a partition and its healing, ``pytest verify/
--inventory``, a second ``up`` that changes nothing, and a ``down`` that leaves nothing.

The tests run in file order on one testnet; the deploy's wall time goes to .shakedown/bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest

from refnode.envelopes import Signer
from shakedown.deploy.record import load_record
from shakedown.faults.ssh import Session
from shakedown.keys import payer
from shakedown.traffic import GatewayTarget, NodeTarget, Traffic
from shakedown.verify.replication import read_states, wait_converged
from shakedown.vm.sshhosts import SSHHosts
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net, fresh_testnet

REPO = Path(__file__).resolve().parents[2]
TESTNET = "sdsys"
FIGURES = REPO / ".shakedown" / "bench" / "systemd_deploy.json"
ROLES = [["chain", "proxy", "db", "node", "gateway"], ["proxy", "db", "node"],
         ["proxy", "db", "node"]]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHosts]:
    with SSHHosts(count=3, run_dir=tmp_path_factory.mktemp("sdsys-hosts")) as made:
        yield made


@pytest.fixture(scope="module")
def inventory(hosts: SSHHosts) -> Path:
    group = {"testnet": TESTNET, "runtime": "systemd", "nodes": 3, "port_base": 26000,
             "record_path": str(hosts.run_dir / "deployment.json")}
    return hosts.write_inventory(hosts.run_dir / "inventory.py", group,
                                 [{"roles": r} for r in ROLES])


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "hosts": 3,
                                   **found}, indent=1) + "\n")


def shakedown(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shakedown.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def record(inventory: Path) -> dict[str, Any]:
    found = load_record(inventory.parent / "deployment.json")
    assert found, "no deployment record"
    return found


def connections(rec: dict[str, Any]) -> dict[str, psycopg.Connection]:
    return {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=5)
            for n in rec["nodes"]}


def send(rec: dict[str, Any], targets: list[NodeTarget | GatewayTarget], count: int) -> None:
    stats = Traffic(targets, rate=0, duration_s=60, max_envelopes=count, batch=25, workers=2,
                    payers=[Signer(bytes(payer(0).key))], timeout=30).run()
    assert stats.acked == count, f"traffic: {stats.acked} of {count} acked; {stats.errors}"


def test_up_deploys_every_role_as_units_over_ssh(inventory: Path, hosts: SSHHosts,
                                                  figures: dict[str, Any]) -> None:
    started = time.monotonic()
    up = shakedown("up", "-i", str(inventory))
    figures["first_up_s"] = round(time.monotonic() - started, 1)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    rec = record(inventory)
    assert rec["runtime"] == "systemd"
    assert [(n["name"], n["host"]) for n in rec["nodes"]] == [
        (f"node-{100 * (k + 1)}", h.address) for k, h in enumerate(hosts.hosts)]
    with Session(hosts.hosts[1].ssh) as s:  # h2 carries its node, its db and its proxy
        active = s.check(f"systemctl is-active {TESTNET}-node-200.service "
                         f"{TESTNET}-db.service {TESTNET}-proxy.service").split()
    assert active == ["active"] * 3
    status = shakedown("status", "-i", str(inventory))
    assert status.returncode == 0, status.stdout


def test_peers_replicate_across_hosts_through_their_proxies(inventory: Path) -> None:
    rec = record(inventory)
    # Each node's on-chain address is its host's proxy: replication crosses the proxies.
    assert all(n["http_address"].endswith(f":{26100 + k}") for k, n in enumerate(rec["nodes"]))
    targets: list[NodeTarget | GatewayTarget] = [
        NodeTarget(n["grpc"], n["node_id"]) for n in rec["nodes"]]
    send(rec, targets, 150)
    wait_for(lambda: _gateway_lands(rec), bool, timeout=60, interval=0.5,
             what="the gateway reaches the nodes")
    conns = connections(rec)
    try:
        wait_converged(conns, {100, 200, 300}, timeout=90)
    finally:
        for c in conns.values():
            c.close()


def _gateway_lands(rec: dict[str, Any]) -> bool:
    stats = Traffic([GatewayTarget(rec["gateway"]["grpc"])], rate=0, duration_s=10,
                    max_envelopes=5, batch=5, timeout=5).run()
    return stats.acked == 5


def test_a_partition_stops_replication_to_one_host_and_healing_catches_up(
        inventory: Path, hosts: SSHHosts) -> None:
    rec = record(inventory)
    h1, h2, h3 = hosts.hosts
    conns = connections(rec)
    try:
        add = shakedown("fault", "add", "partition", h3.address,
                        f"peers={h1.address},{h2.address}", "-i", str(inventory))
        assert add.returncode == 0, add.stderr
        send(rec, [NodeTarget(rec["nodes"][0]["grpc"], 100)], 100)
        want = _sequence(conns["node-100"], 100)
        wait_for(lambda: _sequence(conns["node-200"], 100), lambda s: s >= want,
                 timeout=60, interval=0.25, what="node-200 replicates node-100")
        # node-200 got everything across its own link; node-300's links are cut.
        assert _sequence(conns["node-300"], 100) < want
    finally:
        clear = shakedown("fault", "clear", "-i", str(inventory))
    assert clear.returncode == 0, clear.stderr
    try:
        wait_converged(conns, {100, 200, 300}, timeout=90)
    finally:
        for c in conns.values():
            c.close()


def _sequence(conn: psycopg.Connection, originator: int) -> int:
    return read_states({"n": conn})["n"].clock.get(originator, 0)


def test_toxics_on_a_node_of_a_vm_testnet_slow_its_proxy_and_clear_or_expire(
        inventory: Path, figures: dict[str, Any]) -> None:
    """``fault add latency node-300`` puts a toxic on h3's toxiproxy (through its API on
    127.0.0.1 over SSH): an RPC through node-300's on-chain address takes the latency, and
    ``fault clear`` takes it away. A db-latency with --ttl heals on the host by itself."""
    from shakedown.client import NodeClient
    from shakedown.toxiproxy import ToxiproxyClient

    node = record(inventory)["nodes"][2]
    api = ToxiproxyClient(node["proxy_api"], timeout=5)

    def rpc_ms() -> float:  # one health call on a fresh channel through node-300's proxy
        with NodeClient(node["http_address"], timeout=10) as client:
            client.health()
            started = time.monotonic()
            client.health()
            return (time.monotonic() - started) * 1000

    bad = shakedown("fault", "add", "latency", "node-300", "latency_ms=soon", "-i", str(inventory))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert api.toxics("node-300") == []
    before = wait_for(rpc_ms, lambda ms: ms < 150, timeout=15, interval=0.1,
                      what="an unfaulted RPC")
    started = time.monotonic()
    add = shakedown("fault", "add", "latency", "node-300", "latency_ms=300", "-i", str(inventory))
    assert add.returncode == 0, add.stderr
    slowed = wait_for(rpc_ms, lambda ms: ms >= 300, timeout=15, interval=0.1,
                      what="an RPC through node-300's proxy takes the 300 ms latency")
    figures["toxic_apply_to_effect_s"] = round(time.monotonic() - started, 2)
    assert [(t.type, t.attributes["latency"]) for t in api.toxics("node-300")] == \
        [("latency", 300)]
    clear = shakedown("fault", "clear", "-i", str(inventory))
    assert clear.returncode == 0, clear.stderr
    assert api.toxics("node-300") == []
    after = wait_for(rpc_ms, lambda ms: ms < 150, timeout=15, interval=0.1,
                     what="RPCs through node-300's proxy are fast again after the clear")
    figures["toxic_rpc_ms"] = [round(ms, 1) for ms in (before, slowed, after)]

    started = time.monotonic()
    ttl = shakedown("fault", "add", "db-latency", "node-300", "latency_ms=50", "--ttl", "2s",
                    "-i", str(inventory))
    assert ttl.returncode == 0, ttl.stderr
    assert [t.type for t in api.toxics("node-300-db")] == ["latency"]
    wait_for(lambda: api.toxics("node-300-db"), lambda t: t == [], timeout=15, interval=0.2,
             what="the TTL timer on h3 removes the db-latency toxic")
    figures["toxic_ttl_2s_healed_s"] = round(time.monotonic() - started, 2)
    listed = shakedown("fault", "list", "-i", str(inventory))
    assert listed.returncode == 0 and "0 open faults" in listed.stdout, listed.stdout


def test_verify_suite_runs_unchanged_against_the_vm_testnet(inventory: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "verify/", f"--inventory={inventory}"], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout.splitlines()[-1] and "failed" not in proc.stdout


def test_verify_names_a_toxic_left_on_a_host_proxy(inventory: Path) -> None:
    from shakedown.toxiproxy import ToxiproxyClient

    node = record(inventory)["nodes"][1]
    api = ToxiproxyClient(node["proxy_api"], timeout=5)
    api.add_toxic("node-200", "latency", name="stray", attributes={"latency": 10})
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "verify/", f"--inventory={inventory}", "-m", "faults"],
                              capture_output=True, text=True, timeout=600, cwd=REPO)
    finally:
        api.remove_toxic("node-200", "stray", missing_ok=True)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "toxic stray (latency) on proxy node-200" in proc.stdout, proc.stdout[-3000:]


# --- one fault model: the same call, the same effect, on a Docker and on this testnet ---------

ONE_MODEL = [("partition", "node-100", {"others": "node-200"}),
             ("loss", "node-100", {"percent": 100}),
             ("stop", "node-200", {}),
             ("clock-skew", "node-200", {"offset_s": 3600}),
             ("latency", "node-300", {"latency_ms": 800})]


@pytest.fixture(scope="module")
def docker_net(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(make_net, docker_client, "sdone") as net:
        yield net


@pytest.fixture(params=["docker", "systemd"])
def runtime_inventory(request: pytest.FixtureRequest) -> Path:
    if request.param == "docker":
        return Path(request.getfixturevalue("docker_net").inventory)
    return Path(request.getfixturevalue("inventory"))


def _nodes(inventory: Path) -> dict[str, dict[str, Any]]:
    from shakedown.model import load_inventory

    rec = load_record(load_inventory(inventory)[0].record_path)
    assert rec, "no deployment record"
    return {n["name"]: n for n in rec["nodes"]}


def _serves(node: dict[str, Any]) -> bool:
    from shakedown.client import NodeClient

    try:
        with NodeClient(node["grpc"], timeout=2) as client:
            return bool(client.health())
    except Exception:
        return False


def _publish(node: dict[str, Any]) -> Any:
    from shakedown.client import NodeClient, payer_envelopes

    with NodeClient(node["grpc"], timeout=30) as client:
        (acked,) = client.publish(payer_envelopes(Signer(bytes(payer(0).key)),
                                                  node["node_id"], 1))
    return acked


def _clock_of(node: dict[str, Any], originator: int) -> int:
    with psycopg.connect(node["dsn"], autocommit=True, connect_timeout=5) as conn:
        return read_states({"n": conn})["n"].clock.get(originator, 0)


def _skew_s(node: dict[str, Any]) -> float:
    from refnode.proto import refnode_pb2 as pb

    unsigned = pb.UnsignedOriginatorEnvelope.FromString(
        _publish(node).unsigned_originator_envelope)
    return float(unsigned.originator_ns / 1e9 - time.time())


def _effect(kind: str, n: dict[str, dict[str, Any]], faulted: bool) -> None:
    """Assert what ``kind`` (as in ONE_MODEL) does while ``faulted``, and that it is gone
    after the clear; every wait is for a condition."""
    if kind == "partition":
        want = _clock_of(n["node-100"], 100) + 1
        _publish(n["node-100"])
        wait_for(lambda: _clock_of(n["node-300"], 100), lambda s: s >= want, timeout=60,
                 interval=0.2, what="node-300 replicates node-100")
        if faulted:
            assert _clock_of(n["node-200"], 100) < want, "node-200 replicated across the cut"
        else:
            wait_for(lambda: _clock_of(n["node-200"], 100), lambda s: s >= want, timeout=90,
                     interval=0.2, what="node-200 catches up after the clear")
    elif kind in ("loss", "stop"):
        node = n["node-100" if kind == "loss" else "node-200"]
        wait_for(lambda: _serves(node), lambda up: up != faulted, timeout=60, interval=0.2,
                 what=f"{node['name']} {'stops' if faulted else 'again'} answering")
    elif kind == "clock-skew":
        wait_for(lambda: _serves(n["node-200"]), bool, timeout=90, interval=0.3,
                 what="node-200 serves")
        skew = _skew_s(n["node-200"])
        assert (3500 < skew < 3700) if faulted else abs(skew) < 60, f"skew {skew:.0f} s"
    else:  # latency on node-300's proxy: what its peers replicate from it arrives late
        want = _clock_of(n["node-100"], 300) + 1
        sent = time.monotonic()
        _publish(n["node-300"])
        wait_for(lambda: _clock_of(n["node-100"], 300), lambda s: s >= want, timeout=60,
                 interval=0.02, what="node-100 replicates node-300")
        took = time.monotonic() - sent
        if faulted:
            assert took >= 0.75, f"an 800 ms toxic crossed in {took:.2f} s"


@pytest.mark.parametrize("kind, target, params", ONE_MODEL, ids=[f[0] for f in ONE_MODEL])
def test_one_fault_model_on_both_runtimes(runtime_inventory: Path, kind: str, target: str,
                                          params: dict[str, Any]) -> None:
    """``Injector.for_inventory(...).apply(kind, target, params)``: the same call on a Docker
    testnet and on this systemd one; the effect is seen, the clear removes it, nothing stays."""
    from shakedown.faults import Injector

    n = _nodes(runtime_inventory)
    with Injector.for_inventory(runtime_inventory) as inj:
        entry = inj.apply(kind, target, params, ttl=300)
        try:
            _effect(kind, n, faulted=True)
        finally:
            inj.clear(entry)
        _effect(kind, n, faulted=False)
        assert inj.residue() == []


def test_second_up_changes_nothing(inventory: Path, figures: dict[str, Any]) -> None:
    started = time.monotonic()
    up = shakedown("up", "-i", str(inventory))
    figures["second_up_s"] = round(time.monotonic() - started, 1)
    assert up.returncode == 0, up.stderr[-2000:]
    assert ": 0 changed" in up.stdout, up.stdout
    # One role's own script (deploy/node.py) on the same hosts: also nothing to do.
    node = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory),
                           "deploy/node.py"], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert node.returncode == 0 and "] Success" not in node.stdout, node.stdout[-2000:]


def test_verify_fails_naming_the_node_whose_database_was_tampered(inventory: Path) -> None:
    rec = record(inventory)
    with psycopg.connect(rec["nodes"][1]["dsn"], autocommit=True) as conn:
        for table in ("gateway_envelopes_blob", "gateway_envelopes_meta"):  # a gap on node-200
            conn.execute(f"DELETE FROM {table} WHERE originator_node_id = 100 AND "
                         "originator_sequence_id = 2")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "verify/", f"--inventory={inventory}", "-m", "replication"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "node-200" in proc.stdout


def test_down_leaves_nothing_on_the_hosts(inventory: Path, hosts: SSHHosts,
                                          figures: dict[str, Any]) -> None:
    started = time.monotonic()
    down = shakedown("down", "-i", str(inventory))
    figures["down_s"] = round(time.monotonic() - started, 1)
    assert down.returncode == 0, down.stderr[-2000:]
    for h in hosts.hosts:
        with Session(h.ssh) as s:
            left = s.run(f"ls -d /etc/systemd/system/{TESTNET}-* /opt/shakedown/{TESTNET} "
                         f"/etc/shakedown/{TESTNET} /var/lib/shakedown/testnets/{TESTNET} "
                         f"2>/dev/null; systemctl list-units --all --no-legend '{TESTNET}-*'; "
                         "ss -Htln 'sport >= 26000 and sport <= 26300'").out.strip()
        assert not left, f"{h.name}: {left}"
    assert not (inventory.parent / "deployment.json").exists()
