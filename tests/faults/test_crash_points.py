"""Every multi-step fault heals from its ledger whatever point its apply reached.

The injector runs in a subprocess that SIGKILLs itself right after the n-th call of one step
(a container renamed, stopped, created, started; a node registered; a rule installed in a
namespace), so the ledger holds an intent and the testnet holds half a fault. ``shakedown
fault clear`` must then leave no residue and every service running, or say it did not heal.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap

import docker
import pytest

from shakedown.faults import Injector
from shakedown.faults.inventory import read_residue
from shakedown.model import Testnet
from tests.deploy.testnets import REPO, Net, run_cli
from tests.verify.suite import run_suite

CRASH_AFTER = textwrap.dedent("""
    import importlib, json, os, signal, sys
    from pathlib import Path
    inventory, module, attr, nth, kind, target, params = sys.argv[1:8]
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = owner[part] if isinstance(owner, dict) else getattr(owner, part)
    original = owner[name] if isinstance(owner, dict) else getattr(owner, name)
    calls = []

    def crash_after(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    if isinstance(owner, dict):
        owner[name] = crash_after
    else:
        setattr(owner, name, crash_after)
    from shakedown.faults import Injector
    from shakedown.model import load_inventory
    testnet = load_inventory(Path(inventory))[0]
    Injector.for_testnet(testnet).apply(kind, target, json.loads(params))
    print("applied without a crash", flush=True)
""")
CONTAINERS = "docker.models.containers"
SH = ("shakedown.faults.ops", "OPS.sh")
PARTITION = ("partition", "node-100", {"others": "node-200,node-300"})
TIER = ("tbf", "node-100", {"rate_kbit": 4000, "dst": "node-200", "direction": "both"})
# The first crash point of each kind in every run; the rest with ``-m long``.
FIRST = [
    (CONTAINERS, "Container.rename", 1, "clock-skew", "node-200", {"offset_s": 60}),
    ("shakedown.chain.ops", "Chain.register_node", 1, "churn-add", "", {}),
    (*SH, 1, *PARTITION),
    (*SH, 1, *TIER),
]
LATER = [
    (CONTAINERS, "Container.stop", 1, "clock-skew", "node-200", {"offset_s": 60}),
    (CONTAINERS, "ContainerCollection.create", 1, "clock-skew", "node-200", {"offset_s": 60}),
    (CONTAINERS, "Container.start", 1, "clock-skew", "node-200", {"offset_s": 60}),
    ("shakedown.toxiproxy", "ToxiproxyClient.create_proxy", 1, "churn-add", "", {}),
    ("shakedown.faults.churn", "_docker", 1, "churn-add", "", {}),
    ("shakedown.chain.ops", "Chain.add_to_network", 1, "churn-add", "", {}),
    (*SH, 2, *PARTITION),
    (*SH, 2, *TIER),
]


def _id(c: tuple) -> str:
    return f"{c[3]}-after-{c[1].split('.')[-1]}-{c[2]}"


CASES = [pytest.param(*c, id=_id(c)) for c in FIRST] + [
    pytest.param(*c, id=_id(c), marks=pytest.mark.long) for c in LATER]


@pytest.mark.parametrize("module, attr, nth, kind, target, params", CASES)
def test_a_crash_at_any_step_still_clears_and_leaves_everything_running(
        net: Net, testnet: Testnet, docker_client: docker.DockerClient, module: str, attr: str,
        nth: int, kind: str, target: str, params: dict) -> None:
    before = sorted(c.name for c in docker_client.containers.list(
        all=True, filters={"label": f"shakedown.testnet={net.name}"}))
    proc = subprocess.run([sys.executable, "-c", CRASH_AFTER, str(net.inventory), module, attr,
                           str(nth), kind, target, json.dumps(params)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr[-2000:])
    assert any(e.open for e in Injector.for_testnet(testnet).entries()), "no intent in the ledger"
    cleared = run_cli("fault", "clear", "-i", str(net.inventory))
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared 1 fault(s)" in cleared.stdout, cleared.stdout
    assert read_residue(testnet) == []
    after = docker_client.containers.list(
        all=True, filters={"label": f"shakedown.testnet={net.name}"})
    assert sorted(c.name for c in after) == before  # a churned node is gone, nothing else
    assert all(c.status == "running" for c in after), [(c.name, c.status) for c in after]


def test_a_clear_that_could_not_heal_says_so_and_exits_non_zero(
        net: Net, testnet: Testnet, docker_client: docker.DockerClient) -> None:
    """node-200 stopped; its host port taken meanwhile, so it cannot start: the clear names
    it and exits non-zero, the fault stays open; once the port is free a clear heals it."""
    inj = Injector.for_testnet(testnet)
    entry = inj.apply("stop", "node-200")
    port = next(n["grpc"] for n in inj.backend.record["nodes"]  # type: ignore[attr-defined]
                if n["name"] == "node-200").rsplit(":", 1)[1]
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(port)))
        squatter.listen()
        failed = run_cli("fault", "clear", "-i", str(net.inventory))
    assert failed.returncode != 0, failed.stdout
    assert "node-200" in failed.stderr and failed.stderr.count("\n") == 1, failed.stderr
    assert [e.id for e in inj.active()] == [entry.id]
    healed = run_cli("fault", "clear", "-i", str(net.inventory))
    assert healed.returncode == 0 and "cleared 1 fault(s)" in healed.stdout, healed.stderr
    assert docker_client.containers.get(f"{net.name}-node-200").status == "running"


@pytest.mark.parametrize("argv, named", [
    (["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "32kbit",
      "latency", "400ms"], "tc qdisc tbf"),
    (["iptables", "-w", "5", "-A", "OUTPUT", "-d", "192.0.2.1", "-j", "DROP"],
     "-A OUTPUT -d 192.0.2.1/32 -j DROP"),
])
def test_verify_names_shaping_and_rules_made_by_hand(net: Net, testnet: Testnet,
                                                    tmp_path: object, argv: list[str],
                                                    named: str) -> None:
    """Not ours, still a fault: what someone added by hand in a node's namespace fails
    ``pytest verify/ -m faults``, named, and passes again once it is gone."""
    from pathlib import Path

    from shakedown.faults.ops import in_netns

    container = testnet.container("node-100")
    undo = ["tc", "qdisc", "del", "dev", "eth0", "root"] if argv[0] == "tc" else \
        [*argv[:3], "-D", *argv[4:]]
    in_netns(container, argv)
    try:
        result = run_suite(net, Path(str(tmp_path)), "-m", "faults")
    finally:
        in_netns(container, undo)
    result.only_failed({"test_no_fault_left_behind"}, container, named)
    assert run_suite(net, Path(str(tmp_path)), "-m", "faults").failed() == set()
