"""Verify checks the testnet that was deployed, or stops saying the inventory and the record
disagree; it never checks some of a testnet's nodes as if they were all of it.

One real deployment for the module: four nodes (prefix ``sdr``), its record where the default
inventory looks for one (``.shakedown/<testnet>/deployment.json``). The default inventory
(``inventories/local.py``, three nodes) names the same testnet through ``SHAKEDOWN_TESTNET``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.deploy.testnets import REPO, Net
from tests.verify.nets import fresh_testnet
from tests.verify.suite import PYTEST, run_suite

FOUR = "(nodes 100, 200, 300, 400)"


@pytest.fixture(scope="module")
def four(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    def make(prefix: str) -> Net:
        net = make_net("sdr", nodes=4, record_path=None)  # the default record path
        return dataclasses.replace(
            net, record_path=REPO / ".shakedown" / net.name / "deployment.json")

    with fresh_testnet(make, docker_client) as up:
        assert up.record_path.is_file(), up.record_path
        yield up


def default_suite(testnet: str, out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                Path]:
    """``pytest verify/`` without --inventory, the default inventory naming ``testnet``."""
    summary = out / "summary.json"
    process = subprocess.run(
        [str(PYTEST), "verify/", f"--json-summary={summary}", "-p", "no:cacheprovider",
         "--envelope-cache=off", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SHAKEDOWN_TESTNET": testnet})
    return process, summary


def test_default_inventory_and_another_deployment_stop_before_any_check(four: Net,
                                                                        tmp_path: Path) -> None:
    process, summary = default_suite(four.name, tmp_path)
    assert process.returncode == 4, process.stdout[-2000:]
    assert not summary.exists()  # no check ran
    (line,) = [ln for ln in process.stderr.splitlines() if ln.strip()]
    assert line == (f"ERROR: inventory inventories/local.py describes testnet "
                    f"{four.name} (nodes 100, 200, 300), but the deployment record "
                    f"{four.record_path} describes testnet {four.name} {FOUR}; pass "
                    f"--inventory with the inventory {four.name} was deployed from (or "
                    "--record with this testnet's own record)")


def test_a_record_of_another_testnet_is_refused(four: Net, tmp_path: Path) -> None:
    process, _ = default_suite("sdr-elsewhere", tmp_path, f"--record={four.record_path}")
    assert process.returncode == 4, process.stdout[-2000:]
    assert (f"describes testnet sdr-elsewhere (nodes 100, 200, 300), but the deployment record "
            f"{four.record_path} describes testnet {four.name} {FOUR}") in process.stderr


def test_without_its_own_record_the_records_found_are_named(four: Net, tmp_path: Path) -> None:
    process, summary = default_suite("sdr-none", tmp_path, "-m", "chain")
    assert process.returncode == 1, process.stdout[-2000:]
    checks = json.loads(summary.read_text())["checks"]
    assert checks and all(c["outcome"] == "error" for c in checks)
    message = checks[0]["message"]
    assert message.startswith(f"sdr-none: no deployment record at "
                              f"{REPO / '.shakedown/sdr-none/deployment.json'}"), message
    assert (f"records found: testnet {four.name} {FOUR} at {four.record_path}" in message
            and message.endswith("(pass --inventory with the inventory that deployed it)"))


def test_its_own_inventory_checks_every_node(four: Net, tmp_path: Path) -> None:
    result = run_suite(four, tmp_path, "-m", "chain")
    assert result.process.returncode == 0, result.process.stdout[-3000:]
    assert {n for n in result.checks if n.startswith("test_node_registered")} == {
        f"test_node_registered[node-{i}]" for i in (100, 200, 300, 400)}
    assert (f"shakedown verify: testnet {four.name} from {four.inventory}, record "
            f"{four.record_path}") in result.process.stdout
