"""Converges and CatchesUp compare envelope sets, not the tops: on a real run's testnet, one
row deleted below the top of one node's database fails both, naming the node and sequence."""

from __future__ import annotations

from pathlib import Path

import docker
import psycopg
import pytest

from shakedown.deploy.record import load_record
from shakedown.scenarios.catalogue import get
from shakedown.scenarios.history import read_history
from shakedown.scenarios.probe import Probe
from shakedown.scenarios.runner import RunOptions, run_scenario
from shakedown.scenarios.view import RunView
from tests.deploy.testnets import reap, run_cli
from tests.scenarios.conftest import describe

LOST = (100, 3)  # node-100's third envelope: acked long before node-300 came back


@pytest.mark.long
def test_a_row_lost_below_the_top_fails_converges_and_catches_up(
        tmp_path: Path, docker_client: docker.DockerClient) -> None:
    scenario = get("chaos-node-down")
    result = run_scenario(scenario, RunOptions(seed=4, runs_dir=tmp_path, keep=True,
                                               verify=False))
    inventory = result.run_dir / "inventory.py"
    try:
        assert result.verdict == "pass", describe(result)
        expectations = {e.name: e for e in scenario.expect
                        if e.name in ("converges", "catches-up(stop@node-300)")}
        assert len(expectations) == 2
        record = load_record(result.run_dir / "deployment.json")
        assert record is not None
        dsns = {n["name"]: n["dsn"] for n in record["nodes"]}
        nodes = {n["name"]: int(n["node_id"]) for n in record["nodes"]}

        def checks() -> dict[str, tuple[str, str]]:
            probe = Probe(dsns)
            view = RunView.from_history(scenario, read_history(result.run_dir / "history.jsonl"),
                                        nodes=nodes, stores={n: probe.store(n) for n in dsns})
            found = {name: e.check(view) for name, e in expectations.items()}
            return {name: (c.status, c.message) for name, c in found.items()}

        healthy = checks()
        assert all(status == "pass" for status, _ in healthy.values()), healthy
        with psycopg.connect(dsns["node-300"], autocommit=True) as conn:
            for table in ("gateway_envelopes_meta", "gateway_envelopes_blob"):
                gone = conn.execute(f"DELETE FROM {table} WHERE originator_node_id = %s AND "
                                    "originator_sequence_id = %s", LOST).rowcount
                assert gone == 1, f"{table}: no row {LOST} on node-300"
        broken = checks()
        for name, (status, message) in broken.items():
            assert status == "fail", f"{name} passed with {LOST} gone: {message}"
            assert "node-300: originator 100 lacks sequence 3" in message, (name, message)
    finally:
        run_cli("down", "-i", str(inventory))
        reap(docker_client, result.testnet)

