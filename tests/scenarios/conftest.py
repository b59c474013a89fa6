"""Run scenarios for real: a fresh testnet per run on the local Docker engine, reaped at the
end of the session if a run's own teardown left anything."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import docker
import pytest

from shakedown.scenarios.catalogue import get
from shakedown.scenarios.runner import RunOptions, RunResult, run_scenario
from tests.deploy.testnets import leftovers, reap

Runner = Callable[..., RunResult]


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory,
        docker_client: docker.DockerClient) -> Iterator[Runner]:
    """``run("smoke", node_env={300: {...}})`` -> the RunResult; asserts nothing is left."""
    made: list[str] = []
    runs_dir = tmp_path_factory.mktemp("runs")

    def go(name: str, *, seed: int = 11, node_env: Mapping[int, Mapping[str, str]] | None = None,
           verify: bool = True) -> RunResult:
        result = run_scenario(get(name), RunOptions(seed=seed, runs_dir=runs_dir,
                                                    node_env=node_env or {}, verify=verify))
        if result.testnet:
            made.append(result.testnet)
            left = leftovers(docker_client, result.testnet)
            assert not left, f"{name}: the run left {left}"
        return result

    yield go
    for name in made:
        reap(docker_client, name)


def describe(result: RunResult) -> str:
    """A failing run in one paragraph, for assertion messages."""
    lines = [f"{result.scenario.name}: {result.verdict} ({result.error or 'checks ran'}); "
             f"run dir {result.run_dir}"]
    lines += [f"  {c.status} {c.name}: {c.message}" for c in result.checks]
    lines += [f"  teardown: {t}" for t in result.teardown_errors]
    return "\n".join(lines)


def artifacts_ok(run_dir: Path) -> None:
    for name in ("history.jsonl", "results.json", "junit.xml", "report.html", "inventory.py"):
        assert (run_dir / name).is_file(), f"{run_dir}: no {name}"
    logs = {p.name for p in (run_dir / "logs").glob("*.log")}
    gateways = json.loads((run_dir / "results.json").read_text()).get("topology", {}).get(
        "gateways", 1)  # a scenario without a gateway (propagation) has no gateway log
    assert {"node-100.log", "node-200.log", "node-300.log", "chain.log", "db.log",
            "proxy.log", *(["gateway.log"] if gateways else [])} <= logs, logs
