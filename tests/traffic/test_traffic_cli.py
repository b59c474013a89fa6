"""``shakedown traffic`` on a real testnet: what it acknowledges is in every node's database
and ``pytest verify/`` still passes; a node that stops answering makes it exit 1; bad input and
an unreachable testnet are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import psycopg
import pytest

from shakedown.observe import read_envelope_digests
from shakedown.ports import free_port
from shakedown.waiting import GiveUp, wait_for
from tests.deploy.testnets import REPO, Net, fresh_testnet, run_cli
from tests.verify.nets import converged, gateway_ready
from tests.verify.suite import run_suite


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(make_net, docker_client, "sdr") as up:
        gateway_ready(up)
        yield up


def traffic(net: Net, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("traffic", "-i", str(net.inventory), *args)


def stored(net: Net) -> dict[str, set[tuple[int, int]]]:
    """Every node's stored (originator, sequence id) keys, read from its database."""
    found = {}
    for node in net.record()["nodes"]:
        with psycopg.connect(node["dsn"], autocommit=True, connect_timeout=5) as conn:
            found[node["name"]] = set(read_envelope_digests(conn))
    return found


def acked_keys(doc: dict) -> set[tuple[int, int]]:
    return {(int(o), s) for o, r in doc["originators"].items()
            for s in range(r["first"], r["last"] + 1)}


def test_published_envelopes_are_in_every_database_and_verify_passes(
        net: Net, tmp_path: Path) -> None:
    out = traffic(net, "--rate", "200", "--count", "150", "--batch", "10", "--payers", "3",
                  "--output", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["sent"], doc["acked"], doc["failed"], doc["errors"]) == (150, 150, 0, {})
    assert set(doc["originators"]) == {"100", "200", "300"}  # round-robin over every node
    keys = acked_keys(doc)
    assert len(keys) == 150, "the acks of each originator are one contiguous range"
    wait_for(lambda: stored(net), lambda s: all(keys <= k for k in s.values()), timeout=60,
             interval=0.3, what="every acked envelope on every node")
    assert out.stderr.startswith("shakedown: traffic to "), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, "quiet by default: one progress line"

    through = traffic(net, "--via", "gateway", "--to", "node-200,node-300", "--count", "40",
                      "--rate", "100", "-v", "--output", "json")
    assert through.returncode == 0, through.stderr
    doc = json.loads(through.stdout)
    assert doc["acked"] == 40 and set(doc["originators"]) == {"200", "300"}, doc
    keys = acked_keys(doc)
    wait_for(lambda: stored(net), lambda s: all(keys <= k for k in s.values()), timeout=60,
             interval=0.3, what="gateway traffic on every node")

    converged(net)
    summary = run_suite(net, tmp_path)
    assert summary.process.returncode == 0 and not summary.failed(), summary.process.stdout[-3000:]


def test_the_human_summary_is_one_line(net: Net) -> None:
    out = traffic(net, "--count", "10", "--rate", "50")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sent 10, acked 10, failed 0 in ")
    assert out.stdout.strip().endswith("errors: none") and len(out.stdout.splitlines()) == 1


def test_calls_that_fail_make_it_exit_1(net: Net, docker_client: docker.DockerClient) -> None:
    """node-300 paused once traffic flows: its calls time out, the rest are acked."""
    node = docker_client.containers.get(f"{net.name}-node-300")
    proc = subprocess.Popen([sys.executable, "-m", "shakedown.cli", "traffic", "-i",
                             str(net.inventory), "--rate", "30", "--duration", "8s", "-v",
                             "--output", "json"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None

    def flowing() -> bool:
        if proc.poll() is not None:
            raise GiveUp(f"traffic ended early (exit {proc.returncode})")
        line = proc.stderr.readline()  # -v: a progress line a second
        return " acked " in line and " acked 0," not in line

    try:
        wait_for(flowing, bool, timeout=60, interval=0.0, what="acked traffic")
        node.pause()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        node.reload()
        if node.status == "paused":
            node.unpause()
    assert proc.returncode == 1, out
    doc = json.loads(out)
    assert doc["failed"] > 0 and doc["acked"] > 0 and doc["acked"] + doc["failed"] == doc["sent"]
    assert "DEADLINE_EXCEEDED" in doc["errors"], doc["errors"]


@pytest.mark.parametrize(("args", "says"), [
    (["--rate", "0"], "--rate '0': give a number from 0.01 to 10000"),
    (["--rate", "nan"], "--rate 'nan': give a number"),
    (["--duration", "0"], "--duration '0': give seconds"),
    (["--duration", "2h"], "--duration '2h': give seconds"),
    (["--duration", "3601"], "--duration '3601': give seconds (30, 30s) or minutes (2m), "
                             "more than 0 and at most 3600s"),
    (["--count", "0"], "--count 0: give a whole number from 1 to 1000000"),
    (["--count", "1e9"], "--count '1e9': give a whole number"),
    (["--batch", "5000"], "--batch 5000: give a whole number from 1 to 1000"),
    (["--payers", "21"], "--payers 21: give a whole number from 1 to 20"),
    (["--workers", "-1"], "--workers '-1': give a whole number"),
    (["--via", "carrier-pigeon"], "--via 'carrier-pigeon': use node or gateway"),
    (["--to", "bob"], "--to 'bob': name nodes as node-200,node-300"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    out = run_cli("traffic", "-i", str(tmp_path / "no-inventory.py"), *args)
    assert out.returncode == 2 and not out.stdout
    assert out.stderr.startswith(f"shakedown: {says}"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_node_names_the_testnets_nodes(net: Net) -> None:
    out = traffic(net, "--to", "node-900")
    assert out.returncode == 2 and not out.stdout
    assert out.stderr.strip() == (f"shakedown: --to node-900: no such node in testnet "
                                  f"{net.name}; its nodes are node-100, node-200, node-300")


def test_an_unreachable_testnet_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port = free_port()
    record = tmp_path / "deployment.json"
    record.write_text(json.dumps({"testnet": "gone", "nodes": [
        {"name": "node-100", "node_id": 100, "grpc": f"127.0.0.1:{port}"}]}))
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"hosts = [('@local', {{'testnet': 'gone', "
                         f"'record_path': {str(record)!r}}})]\n")
    out = run_cli("traffic", "-i", str(inventory))
    assert out.returncode == 2 and not out.stdout
    assert out.stderr.startswith(f"shakedown: node at 127.0.0.1:{port} did not answer"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    missing = tmp_path / "none.py"
    missing.write_text(f"hosts = [('@local', {{'testnet': 'none', "
                       f"'record_path': {str(tmp_path / 'none.json')!r}}})]\n")
    out = run_cli("traffic", "-i", str(missing))
    assert out.returncode == 2 and "no deployment record" in out.stderr
