"""Run one scenario end to end and keep its verdict, whatever happens on the way.

Lifecycle: plan (schedule from the seed) -> deploy a fresh testnet -> clear leftover faults ->
workload and fault schedule -> final heal -> settle -> checks (the scenario's, the history
set checker, the verify suite) -> logs -> teardown -> report. Teardown lives in an ExitStack
that runs in reverse order, continues past errors and collects them, with a fresh deadline;
a teardown error is reported beside the verdict, never instead of it.

Ctrl-C: the run's own SIGINT handler records the interrupt (and its phase) the moment it
arrives, so the verdict never depends on where the KeyboardInterrupt surfaces. It raises
KeyboardInterrupt only inside phases that may be cut short (plan, setup, ready, workload,
heal, settle, checks); during the deploy (pyinfra must not be cut mid-way; the next phase
stops the run) and the teardown it only says to wait. An interrupted run still tears down;
its verdict is ``error`` ("interrupted (Ctrl-C) during <phase>"), or the checks' verdict if
they had finished.

    result = run_scenario(get("smoke"), RunOptions(seed=7))
    result.verdict, result.exit_code, result.run_dir
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError, ShakedownError
from shakedown.model import Testnet
from shakedown.scenarios.api import Fault, Scenario
from shakedown.scenarios.driver import Driver
from shakedown.scenarios.expectations import FAIL, PASS, SKIP, Check, Expectation, HistorySet
from shakedown.scenarios.history import History, read_history
from shakedown.scenarios.probe import Probe, Sampler
from shakedown.scenarios.provision import RunTestnet
from shakedown.scenarios.schedule import Planned, plan
from shakedown.scenarios.verify_suite import VerifySuite
from shakedown.scenarios.view import RunView

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUNS_DIR = REPO_ROOT / ".shakedown" / "runs"
EXIT = {"pass": 0, "fail": 1, "error": 2}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunOptions:
    """How to run: seed (None: drawn and recorded), overrides, where runs go, teardown."""

    seed: int | None = None
    keep: bool = False
    verify: bool = True
    images: Mapping[str, str] = field(default_factory=dict)
    node_env: Mapping[int, Mapping[str, str]] = field(default_factory=dict)  # 0: every node
    runs_dir: Path = DEFAULT_RUNS_DIR
    verbose: bool = False
    teardown_timeout_s: float = 180.0
    say: Callable[[str], None] = _stderr


@dataclass
class Phase:
    name: str
    start_s: float
    duration_s: float = 0.0
    ok: bool = True
    error: str = ""


@dataclass
class RunResult:
    """Everything the reports need; ``verdict`` is pass, fail or error (could not run)."""

    scenario: Scenario
    seed: int
    run_dir: Path
    started_at: str
    testnet: str = ""
    verdict: str = "error"
    error: str = ""
    interrupted: bool = False
    checks: list[Check] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    teardown_errors: list[str] = field(default_factory=list)
    fault_errors: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    kept: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]


# Phases a Ctrl-C may cut short; any other (deploy, teardown) finishes first.
_DEFERRED = ("deploy", "teardown")


def with_overrides(scenario: Scenario, options: RunOptions) -> Scenario:
    """The scenario with the options' images and node environment merged into its topology.

    Raises ConfigError (one line) for a node id the scenario's topology does not have, or a
    node environment the testnet model refuses, before anything is created.
    """
    topo = scenario.topology
    known = [(k + 1) * 100 for k in range(topo.nodes)]
    env: dict[int, dict[str, str]] = {int(k): dict(v) for k, v in topo.node_env.items()}
    for node_id, values in options.node_env.items():
        if int(node_id) != 0 and int(node_id) not in known:
            raise ConfigError(f"--node-env {node_id}:...: scenario {scenario.name} has no node "
                              f"{node_id}; its nodes are {', '.join(map(str, known))}")
        for i in known if int(node_id) == 0 else [int(node_id)]:
            env.setdefault(i, {}).update(values)
    topo = dataclasses.replace(topo, node_env=env, images={**topo.images, **options.images})
    Testnet.from_data({"testnet": "sds-check", "nodes": topo.nodes, "node_env": env,
                       "images": dict(topo.images)})  # the model's own checks, up front
    return dataclasses.replace(scenario, topology=topo)


class Run:
    """One run's state; ``execute()`` never raises for anything the run itself went through."""

    def __init__(self, scenario: Scenario, options: RunOptions):
        self.options = options
        self.scenario = with_overrides(scenario, options)
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(
            1, 2**31)
        self.started = time.monotonic()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_dir = options.runs_dir / f"{stamp}-{scenario.name}-s{self.seed}"
        k = 1
        while run_dir.exists():
            k += 1
            run_dir = options.runs_dir / f"{stamp}-{scenario.name}-s{self.seed}-{k}"
        run_dir.mkdir(parents=True)
        self.result = RunResult(self.scenario, self.seed, run_dir,
                                datetime.now(UTC).isoformat(timespec="seconds"))
        self.history = History(run_dir / "history.jsonl", started=self.started)
        self.net: RunTestnet | None = None
        self.driver: Driver | None = None
        self.checks_ran = False
        self.current_phase = "start"
        self.interrupted_in = ""  # the phase the first Ctrl-C arrived in
        self._interruptible = False  # inside a phase a Ctrl-C may cut short

    def say(self, line: str) -> None:
        self.options.say(f"{self.scenario.name}: {line}")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        ph = Phase(name, round(time.monotonic() - self.started, 3))
        self.result.phases.append(ph)
        self.current_phase = name
        self.history.info("phase", phase=name, state="begin")
        began = time.monotonic()
        try:
            if name not in _DEFERRED:
                if self.result.interrupted:  # a Ctrl-C during the deploy stops the run here
                    raise KeyboardInterrupt
                self._interruptible = True
            yield
        except BaseException as e:
            self._interruptible = False
            ph.ok, ph.error = False, str(e) or type(e).__name__
            raise
        finally:
            self._interruptible = False
            ph.duration_s = round(time.monotonic() - began, 3)
            self.history.info("phase", phase=name, state="done", ok=ph.ok,
                              duration_s=ph.duration_s)

    def execute(self) -> RunResult:
        stack = contextlib.ExitStack()
        with _sigint_handled(self._on_sigint):
            try:
                try:
                    self._run(stack)
                except ShakedownError as e:
                    self.result.error = str(e)
                    if not self.result.interrupted:
                        self.say(f"could not run: {e}")
                except Exception as e:  # a bug of ours: still tear down, say what happened
                    self.result.error = f"{type(e).__name__}: {e}"
                    self.say(f"could not run: {self.result.error}")
            except KeyboardInterrupt:
                self._note_interrupt()  # raised by _on_sigint, or by Python's own handler
                self.say("interrupted: healing and tearing down")
            finally:
                self._interruptible = False
                if self.driver is not None:
                    self.driver.halt()
                self._teardown(stack)
                self._finish()
        return self.result

    def _note_interrupt(self) -> None:
        if not self.result.interrupted:
            self.result.interrupted = True
            self.interrupted_in = self.current_phase

    def _on_sigint(self, signum: int, frame: object) -> None:
        """Record a Ctrl-C at once; cut the phase short only where that is safe.

        Runs between any two bytecodes of the main thread, so it takes no lock (no history
        write, no print): the interrupt goes into the history in ``_finish``.
        """
        first = not self.result.interrupted
        self._note_interrupt()
        if self._interruptible:
            raise KeyboardInterrupt
        if self.current_phase == "deploy":
            line = "interrupted: the deploy finishes first, then the run tears down"
        else:
            line = "tearing down; please wait (the testnet must not be left behind)"
        if first or self.current_phase != "deploy":
            _write_stderr(f"{self.scenario.name}: {line}")

    def _run(self, stack: contextlib.ExitStack) -> None:
        scenario = self.scenario
        with self.phase("plan"):
            schedule = plan(scenario.faults, scenario.workload_end_s, random.Random(self.seed))
            if schedule and not scenario.topology.chaos:
                raise ConfigError(f"{scenario.name}: topology has chaos off but a fault schedule")
            self.history.info("plan", scenario=scenario.name, seed=self.seed,
                              schedule=[p.to_json() for p in schedule])
            images = resolve_images(self.options.verbose, self.say)
            self.net = RunTestnet.create(scenario.name, scenario.topology, self.result.run_dir,
                                         images)
            self.result.testnet = self.net.name
        net = self.net
        stack.callback(self._guard, "teardown", self._remove_testnet)
        stack.callback(self._guard, "logs", lambda: net.collect_logs(self.result.run_dir / "logs"))
        self.say(f"seed {self.seed}; deploying testnet {net.name} ({scenario.topology.nodes} "
                 f"nodes, {scenario.topology.gateways} gateway)")
        with self.phase("deploy"):
            summary = net.deploy(self.options.verbose)
        self.say(f"deployed in {self.result.phases[-1].duration_s:.1f}s ({summary})")
        record = net.record()
        injector = None
        if any(isinstance(p.what, Fault) for p in schedule) or scenario.topology.chaos:
            with self.phase("setup"):
                injector = self._make_injector(
                    net, needed=any(isinstance(p.what, Fault) for p in schedule))
                if injector is not None:
                    left = injector.clear_all()
                    self.history.info("heal", window="leftovers", cleared=len(left))
        dsns = {n["name"]: n["dsn"] for n in record["nodes"]}
        probe = Probe(dsns, rpc=record.get("chain", {}).get("rpc"))
        stack.callback(probe.close)
        self.driver = driver = Driver(scenario, net, record, self.history, probe, injector,
                                      self.say, seed=self.seed)
        if injector is not None:
            stack.callback(self._guard, "final heal", self._final_heal)
        with self.phase("ready"):
            driver.ready()
        sampler = Sampler(probe, partial(self.history.info, "sample")).start()
        stack.callback(sampler.stop)
        with self.phase("workload"):
            self._workload(driver, schedule)
        with self.phase("heal"):
            self._heal(driver)
        self.result.fault_errors = list(driver.fault_errors)
        nodes = driver.canonical()
        with self.phase("settle"):
            driver.settle(nodes)
            driver.health(nodes)
        sampler.stop()
        with self.phase("checks"):
            self._check(probe, nodes)

    def _check(self, probe: Probe, nodes: dict[str, int]) -> None:
        stores, unread = {}, []
        for name in nodes:
            try:
                stores[name] = probe.store(name)
            except Exception as e:
                unread.append(f"{name}: {type(e).__name__}: {e}")
        view = RunView.from_history(self.scenario, read_history(self.history.path), nodes=nodes,
                                    stores=stores, run_dir=self.result.run_dir,
                                    inventory=self.net.inventory if self.net else Path(),
                                    verify=self.options.verify)
        expectations = self._expectations()
        for exp in expectations:
            began = time.monotonic()
            try:
                check = exp.check(view)
                if isinstance(exp, HistorySet) and unread:
                    check = Check(exp.name, FAIL, f"could not read {'; '.join(unread)}")
            except Exception as e:
                check = Check(exp.name, FAIL, f"could not check: {type(e).__name__}: {e}")
            check = dataclasses.replace(check, duration_s=time.monotonic() - began)
            self.result.checks.append(check)
            self.history.info("check", name=check.name, status=check.status,
                              message=check.message)
            self.say(f"{check.status.upper():4} {check.name}: {check.message}")
        self.result.metrics.update(view.metrics)
        self.checks_ran = True

    # --- what a kind of run may do its own way (the chaos engine does) -----------------------

    def _make_injector(self, net: RunTestnet, needed: bool) -> Any:
        return _injector(net, needed)

    def _workload(self, driver: Driver, schedule: tuple[Planned, ...]) -> None:
        driver.run_workload(schedule)

    def _heal(self, driver: Driver) -> None:
        driver.heal()

    def _expectations(self) -> list[Expectation]:
        expectations: list[Expectation] = [*self.scenario.expect, HistorySet()]
        if not any(isinstance(e, VerifySuite) for e in expectations):  # or one expecting findings
            expectations.append(VerifySuite())
        return expectations

    def _final_heal(self) -> None:
        if self.driver is not None and self.driver.injector is not None:
            self.driver.heal()

    def _remove_testnet(self) -> None:
        net = self.net
        if net is None:
            return
        if self.options.keep:
            self.result.kept = True
            self.say(f"kept testnet {net.name}; remove it with: shakedown down -i {net.inventory}")
            return
        net.teardown(self.options.teardown_timeout_s, self.options.verbose)
        left = net.reap()
        if left:
            raise ShakedownError(f"teardown left {len(left)} containers; removed them: "
                                 f"{', '.join(left[:3])}")

    def _guard(self, what: str, fn: Callable[[], Any]) -> None:
        """Run one teardown step; collect its error instead of raising."""
        try:
            fn()
        except Exception as e:
            self.result.teardown_errors.append(f"{what}: {e}")
            self.say(f"{what} failed: {e}")

    def _teardown(self, stack: contextlib.ExitStack) -> None:
        with self.phase("teardown"):
            try:
                stack.close()
            except Exception as e:  # callbacks are guarded; this is a last resort
                self.result.teardown_errors.append(f"teardown: {e}")

    def _finish(self) -> None:
        result = self.result
        if self.checks_ran:  # checks that finished keep their verdict, interrupted or not
            bad = [c for c in result.checks if c.status not in (PASS, SKIP)]
            result.verdict = "fail" if bad else "pass"
        else:
            result.verdict = "error"
        if result.interrupted:
            self.history.info("interrupt", phase=self.interrupted_in)
            if not self.checks_ran:
                why = f"interrupted (Ctrl-C) during {self.interrupted_in}"
                result.error = f"{why}; {result.error}" if result.error else why
        result.duration_s = round(time.monotonic() - self.started, 3)
        if self.driver is not None:
            stats = [p.stats for p in self.driver.publishers]
            errors: dict[str, int] = {}
            for s in stats:
                for k, v in s.errors.items():
                    errors[k] = errors.get(k, 0) + v
            result.traffic = {"sent": sum(s.sent for s in stats),
                              "acked": sum(s.acked for s in stats),
                              "failed": sum(s.failed for s in stats), "errors": errors}
        self.history.info("verdict", verdict=result.verdict, error=result.error,
                          teardown_errors=result.teardown_errors)
        self.history.close()
        from shakedown.scenarios.report import write_reports

        try:
            write_reports(result)
        except Exception as e:
            result.teardown_errors.append(f"report: {type(e).__name__}: {e}")
        tail = f" (teardown: {'; '.join(result.teardown_errors)})" if result.teardown_errors else ""
        why = f": {result.error}" if result.error and result.verdict == "error" else ""
        if result.interrupted and self.checks_ran:
            why = f" (interrupted (Ctrl-C) during {self.interrupted_in})"
        self.say(f"verdict {result.verdict.upper()}{why} in {result.duration_s:.1f}s; "
                 f"report {result.run_dir / 'report.html'}{tail}")


def run_scenario(scenario: Scenario, options: RunOptions | None = None) -> RunResult:
    """Run ``scenario`` on a fresh testnet; see the module docstring. A scenario with a
    ``chaos`` spec runs the chaos engine (``shakedown.chaos``) on the same lifecycle."""
    if scenario.chaos is not None:
        from shakedown.chaos.engine import ChaosRun

        return ChaosRun(scenario, options or RunOptions()).execute()
    return Run(scenario, options or RunOptions()).execute()


_images_cache: dict[str, str] = {}


def resolve_images(verbose: bool, say: Callable[[str], None]) -> dict[str, str]:
    """The image set every run pins into its inventory, built or found once per process."""
    if not _images_cache:
        from shakedown.images import connect, ensure_images

        def log(line: str) -> None:
            if verbose or "built" in line or "building" in line:
                say(line)

        found = ensure_images(connect(), log=log)
        _images_cache.update(node=found.node, anvil=found.anvil, postgres=found.postgres,
                             toxiproxy=found.toxiproxy)
    return dict(_images_cache)


def _injector(net: RunTestnet, needed: bool) -> Any:
    """The testnet's fault injector; None when faults are not installed and none are needed."""
    try:
        from shakedown.faults import Injector
    except ImportError as e:
        if needed:
            raise ShakedownError(f"fault injection is unavailable: {e}") from e
        return None
    return Injector.for_testnet(net.model)


@contextlib.contextmanager
def _sigint_handled(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` receives SIGINT while the run lasts (only the main thread gets signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_stderr(line: str) -> None:
    """One line to stderr from a signal handler: an unbuffered write, no stream lock."""
    with contextlib.suppress(OSError, ValueError):
        os.write(sys.stderr.fileno(), (line + "\n").encode())
