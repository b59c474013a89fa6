"""Shrink a failing chaos schedule to the fewest events that still fail the same property.

Delta debugging (Zeller's ddmin) over the recorded schedule's events, each candidate played on
a fresh testnet with only the model's checks (no verify suite, first failing checkpoint ends
it). "Still fails" means the same ``chaos-<property>`` check fails. Bounded by a number of
runs and a wall-time budget; what is smallest when the budget runs out is the answer.

It starts from what the first failing checkpoint had seen (later events cannot matter to it),
then tries two guesses before plain ddmin: the publishes the mismatch names with the faults
since the last agreeing checkpoint that touch its nodes, then everything since that
checkpoint (both with the faults still open at it). Closing events go with their openers
(``Schedule.only``); steps keep their numbers and their pace, so what remains runs together
and keeps its timing.

Why not Hypothesis here: its shrinker needs hundreds of cheap in-process replays and keeps its
finds in its own database, while each candidate here costs a testnet for tens of seconds, the
budget is a handful of runs, and the artifact must be a schedule file ``--replay`` takes.
Hypothesis tests ``ddmin`` itself on synthetic failures (tests/chaos/test_shrink.py).

    result = shrink(schedule, target, run=lambda s: still_fails(s), budget=Budget(12, 1800))
    result.minimal.events
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shakedown.chaos.judge import LIVENESS, PROPERTIES
from shakedown.chaos.schedule import Event, Schedule
from shakedown.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    runs: int = 16
    seconds: float = 1800.0


@dataclass(frozen=True)
class Target:
    """The failure to keep: a model property, where it first failed, what it named."""

    prop: str
    event: int
    node: str = ""
    events: tuple[int, ...] = ()
    since: int = 0          # the last event before the last checkpoint that still agreed


@dataclass(frozen=True)
class Try:
    events: tuple[int, ...]
    failed: bool
    run_dir: str
    seconds: float


@dataclass
class ShrinkResult:
    minimal: Schedule
    tries: list[Try] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = ""          # why the search ended early ("" when ddmin finished)
    verified_by: str = ""      # the run directory of the run that showed the minimal fails


class BudgetSpent(Exception):
    """The budget ran out."""


def ddmin(items: list[int], fails: Callable[[list[int]], bool],
          firsts: Iterable[list[int]] = ()) -> list[int]:
    """A 1-minimal sublist of ``items`` for which ``fails`` holds (``fails(items)`` is taken
    as true). ``firsts`` are tried before splitting; ``fails`` may raise BudgetSpent to stop
    early, and the smallest failing list so far is returned."""
    cache: dict[tuple[int, ...], bool] = {tuple(items): True}

    def test(subset: list[int]) -> bool:
        key = tuple(subset)
        if key not in cache:
            cache[key] = fails(subset)
        return cache[key]

    current = list(items)
    try:
        for first in firsts:
            if first and len(first) < len(current) and set(first) <= set(current) \
                    and test(first):
                current = list(first)
        n = 2
        while len(current) >= 2:
            size = len(current) / n
            chunks = [current[round(i * size):round((i + 1) * size)] for i in range(n)]
            chunks = [c for c in chunks if c]
            reduced = False
            for chunk in chunks:
                if test(chunk):
                    current, n, reduced = chunk, 2, True
                    break
            if not reduced and len(chunks) > 2:
                for chunk in chunks:
                    rest = [x for x in current if x not in chunk]
                    if test(rest):
                        current, n, reduced = rest, max(n - 1, 2), True
                        break
            if not reduced:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    except BudgetSpent:
        pass
    return current


def _names(e: Event) -> set[str]:
    found = {*e.target.split(","), *str(e.params.get("others", "")).split(","),
             str(e.params.get("node", ""))}
    return {n for n in found if n}


def guesses(schedule: Schedule, target: Target, among: list[int]) -> list[list[int]]:
    """First candidates, smallest first: (1) the events the mismatch names and the faults
    after the last agreeing checkpoint that touch its nodes; (2) everything after that
    checkpoint. Both keep the named events and the faults still open at that checkpoint."""
    by_n = {e.n: e for e in schedule.events}
    start = next((e.step for e in schedule.events if e.n > target.since), 0)
    carried = {e.n for e in schedule.opened_before(start)} if start else set()
    named = set(target.events)
    nodes = {target.node} | {n for k in named if k in by_n for n in _names(by_n[k])}
    segment = {k for k in among if k > target.since} | carried | named
    focused = {k for k in segment if k in named or (
        not by_n[k].name.startswith("publish") and (_names(by_n[k]) & nodes
                                                    or by_n[k].target in ("network", "db")))}
    return [sorted(focused & set(among)), sorted(segment & set(among))]


def shrink(schedule: Schedule, target: Target, run: Callable[[Schedule], tuple[bool, str]],
           budget: Budget, say: Callable[[str], None] = lambda line: None) -> ShrinkResult:
    """The smallest schedule found that still fails ``target.prop`` within ``budget``."""
    started = time.monotonic()
    base = [e.n for e in schedule.events if e.n <= target.event]
    result = ShrinkResult(schedule.only(base))

    def fails(subset: list[int]) -> bool:
        candidate = schedule.only(subset)
        numbers = tuple(e.n for e in candidate.events)
        if not numbers:
            return False
        if len(result.tries) >= budget.runs:
            result.stopped = f"the budget of {budget.runs} runs is spent"
            raise BudgetSpent
        if time.monotonic() - started >= budget.seconds:
            result.stopped = f"the budget of {budget.seconds:g}s is spent"
            raise BudgetSpent
        began = time.monotonic()
        failed, run_dir = run(candidate)
        result.tries.append(Try(numbers, failed, run_dir, round(time.monotonic() - began, 1)))
        say(f"shrink run {len(result.tries)}/{budget.runs}: {len(numbers)} events "
            f"{list(numbers)} -> {'fails ' + target.prop if failed else 'passes'}")
        if failed and len(numbers) < len(result.minimal.events):
            result.minimal, result.verified_by = candidate, run_dir
        return failed

    ddmin(base, fails, firsts=guesses(schedule, target, base))
    result.seconds = round(time.monotonic() - started, 1)
    return result


# --- the command ------------------------------------------------------------------------

def target_of(run_dir: Path) -> Target:
    """The model property a run failed first: the earliest checkpoint; there a safety property
    before a liveness one (it reproduces without waiting out a deadline), then table order."""
    path = run_dir / "results.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no results.json; the run did not finish, so there is no "
                          "failure to shrink")
    checks = json.loads(path.read_text()).get("checks", [])
    agreed = _agreeing_checkpoints(run_dir / "history.jsonl")
    failing: list[tuple[int, bool, int, Target]] = []
    for c in checks:
        prop = c["name"].removeprefix("chaos-")
        if c["status"] == "fail" and c["name"].startswith("chaos-") and prop in PROPERTIES:
            first = (c["details"].get("mismatches") or [{}])[0]
            failing.append((int(c["details"].get("first_event", 0)), prop in LIVENESS,
                            PROPERTIES.index(prop),
                            Target(prop, int(c["details"].get("first_event", 0)),
                                   str(first.get("node", "")),
                                   tuple(int(k) for k in first.get("events", ())))))
    if not failing:
        verdict = json.loads(path.read_text()).get("verdict")
        raise ConfigError(f"{run_dir}: no model property failed (verdict {verdict}); nothing "
                          "to shrink")
    found = min(failing, key=lambda f: f[:3])[3]
    since = max((e for e in agreed if e < found.event), default=0)
    return Target(found.prop, found.event, found.node, found.events, since)


def _agreeing_checkpoints(history: Path) -> list[int]:
    """Events after which a checkpoint agreed with the model, from the run's history."""
    if not history.is_file():
        return []
    from shakedown.scenarios.history import iter_history

    return [int(e.get("event", 0)) for e in iter_history(history)
            if e.get("f") == "checkpoint" and e.get("type") == "ok" and not e.get("final")]


def shrink_command(run_dir: Path, options: Any, budget: Budget) -> int:
    """``shakedown chaos --shrink RUN_DIR``: print the minimal schedule, leave it replayable."""
    import dataclasses
    import sys

    from shakedown.chaos.engine import ChaosRun
    from shakedown.chaos.replay import read_run, scenario_for

    schedule, config = read_run(run_dir)
    target = target_of(run_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = options.runs_dir / f"{stamp}-chaos-shrink-s{schedule.seed}"
    out.mkdir(parents=True)
    candidates = dataclasses.replace(options, runs_dir=out / "runs", verify=False,
                                     images={**config.get("images", {}), **options.images})

    def say(line: str) -> None:
        print(f"shakedown: {line}", file=sys.stderr, flush=True)

    def run(candidate: Schedule) -> tuple[bool, str]:
        scenario = scenario_for(candidate, config, name="chaos-shrink", stop_on=target.prop)
        r = ChaosRun(scenario, dataclasses.replace(candidates, say=lambda line: None),
                     candidate, model_only=True).execute()
        failed = any(c.name == f"chaos-{target.prop}" and c.status == "fail" for c in r.checks)
        return failed, str(r.run_dir)

    say(f"shrinking {len(schedule.events)} events of {run_dir.name}: keeping chaos-"
        f"{target.prop} failing (first after event {target.event}); at most {budget.runs} "
        f"runs, {budget.seconds:g}s")
    result = shrink(schedule, target, run, budget, say)
    write_result(out, result, target, config, budget, run_dir)
    n = len(result.minimal.events)
    print(f"shrunk {len(schedule.events)} events to {n} in {len(result.tries)} runs "
          f"({result.seconds:.0f}s){'; ' + result.stopped if result.stopped else ''}; "
          f"still fails chaos-{target.prop}:")
    for e in result.minimal.events:
        print(f"  {e.describe()}")
    print(f"replay: shakedown chaos --replay {out}")
    return 1


def write_result(out: Path, result: ShrinkResult, target: Target, config: dict[str, Any],
                 budget: Budget, source: Path) -> None:
    """The minimal schedule (replayable: schedule.json, chaos.json) and the search."""
    (out / "schedule.json").write_text(result.minimal.to_text())
    (out / "chaos.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    (out / "shrink.json").write_text(json.dumps({
        "source": str(source), "property": target.prop, "first_failing_event": target.event,
        "budget": {"runs": budget.runs, "seconds": budget.seconds},
        "minimal": [e.n for e in result.minimal.events], "verified_by": result.verified_by,
        "stopped": result.stopped, "seconds": result.seconds,
        "tries": [{"events": list(t.events), "failed": t.failed, "run_dir": t.run_dir,
                   "seconds": t.seconds} for t in result.tries]}, indent=1) + "\n")
