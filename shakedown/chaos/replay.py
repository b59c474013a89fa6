"""Read a chaos run directory back: its schedule (the replay artifact) and how it ran.

``schedule.json`` holds the seed, topology, event table and every event; ``chaos.json`` the
rest of the run's configuration (node environment, images, bounds). ``--replay`` and
``--shrink`` start here.

    scenario, schedule, images = replay_run(Path(".shakedown/runs/<run>"))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shakedown.chaos.engine import ChaosSpec, chaos_scenario
from shakedown.chaos.schedule import Schedule
from shakedown.errors import ConfigError
from shakedown.scenarios.api import Scenario


def read_run(run_dir: Path) -> tuple[Schedule, dict[str, Any]]:
    """The run's schedule and configuration; ConfigError (one line) when it is not a chaos
    run directory."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    path = run_dir / "schedule.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no schedule.json here; give the directory of a chaos "
                          "run (shakedown chaos writes one under .shakedown/runs/)")
    schedule = Schedule.read(path)
    config: dict[str, Any] = {}
    if (run_dir / "chaos.json").is_file():
        try:
            config = json.loads((run_dir / "chaos.json").read_text())
        except ValueError as e:
            raise ConfigError(f"{run_dir}/chaos.json: not JSON ({e})") from None
    return schedule, config


def scenario_for(schedule: Schedule, config: dict[str, Any], stop_on_mismatch: bool = True,
                 name: str | None = None, stop_on: str = "") -> Scenario:
    """The scenario that plays ``schedule`` as its run was configured."""
    spec = ChaosSpec(events=max(1, len(schedule.events)), check_every=schedule.check_every,
                     duration_s=float(config.get("duration_s", 600.0)),
                     settle_s=float(config.get("settle_s", 60.0)), payers=schedule.payers,
                     table=schedule.table, stop_on_mismatch=stop_on_mismatch, stop_on=stop_on)
    env = {int(k): dict(v) for k, v in (config.get("node_env") or {}).items()}
    return chaos_scenario(name or str(config.get("name") or "chaos"), spec,
                          nodes=len(schedule.nodes), gateways=len(schedule.gateways),
                          description=str(config.get("description") or ""), node_env=env)


def replay_run(run_dir: Path, stop_on_mismatch: bool = True
               ) -> tuple[Scenario, Schedule, dict[str, str]]:
    """What ``--replay RUN_DIR`` runs: the same schedule, topology, node environment, images."""
    schedule, config = read_run(run_dir)
    return (scenario_for(schedule, config, stop_on_mismatch), schedule,
            dict(config.get("images") or {}))
