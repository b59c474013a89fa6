"""Faults are always removable: after the injector is SIGKILLed, by TTL with no controller,
and through every interface (library, CLI, pyinfra scripts). Bad input is one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shakedown.faults import Injector
from shakedown.faults.inventory import read_residue
from shakedown.model import Testnet
from shakedown.waiting import wait_for
from tests.deploy.testnets import REPO, Net, run_cli

INJECT_AND_HANG = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from shakedown.faults import Injector
    from shakedown.model import load_inventory
    inj = Injector.for_testnet(load_inventory(Path(sys.argv[1]))[0])
    faults = [("latency", "node-100", {"latency_ms": 300}), ("blackhole", "node-300", {}),
              ("tbf", "node-200", {"rate_kbit": 800}), ("pause", "gateway", {}),
              ("clock-skew", "node-200", {"offset_s": 60}), ("mining-stop", "chain", {}),
              ("loss", "node-100", {"percent": 5})]
    for kind, target, params in faults:
        inj.apply(kind, target, params)
    print("applied", flush=True)
    time.sleep(600)
""")


def test_clear_after_the_injector_was_sigkilled(net: Net, testnet: Testnet) -> None:
    proc = subprocess.Popen([sys.executable, "-c", INJECT_AND_HANG, str(net.inventory)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "applied"
        residue = read_residue(testnet)
        assert len(residue) >= 7, residue
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    cleared = run_cli("fault", "clear", "-i", str(net.inventory))
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared 7 fault(s)" in cleared.stdout
    assert read_residue(testnet) == []
    again = run_cli("fault", "clear", "-i", str(net.inventory))  # idempotent
    assert again.returncode == 0 and "cleared 0 fault(s)" in again.stdout


def test_ttl_heals_with_no_controller_alive(net: Net, testnet: Testnet) -> None:
    added = run_cli("fault", "add", "blackhole", "node-200", "--ttl", "2s", "-i",
                    str(net.inventory))
    assert added.returncode == 0, added.stderr
    assert read_residue(testnet), "the blackhole was not applied"
    # The CLI process has exited: only the detached expiry on this host can heal it.
    wait_for(lambda: read_residue(testnet), lambda r: r == [], timeout=30, interval=0.5,
             what="the TTL fault heals by itself")
    listed = run_cli("fault", "list", "--all", "-i", str(net.inventory))
    assert "blackhole node-200" in listed.stdout and "[cleared]" in listed.stdout


def test_cli_adds_lists_and_clears(net: Net, testnet: Testnet) -> None:
    inv = str(net.inventory)
    added = run_cli("fault", "add", "latency", "node-200", "latency_ms=50", "-i", inv)
    assert added.returncode == 0 and "applied f-" in added.stdout, added.stderr
    listed = run_cli("fault", "list", "-i", inv)
    assert "1 open faults" in listed.stdout and "latency node-200" in listed.stdout
    entry_id = re.search(r"(f-[0-9a-f]{8}) latency", listed.stdout).group(1)  # type: ignore[union-attr]
    cleared = run_cli("fault", "clear", entry_id, "-i", inv)
    assert cleared.returncode == 0 and "cleared 1 fault(s)" in cleared.stdout
    assert read_residue(testnet) == []


def test_bad_cli_input_is_one_line_and_changes_nothing(net: Net, testnet: Testnet) -> None:
    inv = str(net.inventory)
    before = Injector.for_testnet(testnet).entries()
    cases = {
        ("fault", "add", "lag", "node-200"): "unknown fault kind 'lag'",
        ("fault", "add", "latency", "node-900", "latency_ms=5"): "unknown target 'node-900'",
        ("fault", "add", "latency", "node-200", "latency_ms=x"): "latency_ms='x': expected",
        ("fault", "add", "latency", "node-200"): "missing parameter latency_ms",
        ("fault", "add", "latency", "node-200", "delay"): "write it as name=value",
        ("fault", "add", "pause", "node-200", "--ttl", "soon"): "--ttl 'soon'",
        ("fault", "clear", "f-nope"): "no fault f-nope",
    }
    for args, message in cases.items():
        result = run_cli(*args, "-i", inv)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert Injector.for_testnet(testnet).entries() == before


def pyinfra(net: Net, script: str, *data: str) -> subprocess.CompletedProcess[str]:
    args = [a for d in data for a in ("--data", d)]
    return subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(net.inventory),
                           f"faults/{script}", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_pyinfra_fault_scripts_apply_and_clear(net: Net, testnet: Testnet) -> None:
    applied = pyinfra(net, "netem.py", "target=node-200", "delay_ms=200")
    assert applied.returncode == 0, applied.stdout[-800:]
    active = Injector.for_testnet(testnet).active()
    assert [(e.kind, e.target, e.params["delay_ms"]) for e in active] == \
        [("netem", "node-200", 200)]
    bad = pyinfra(net, "toxic.py", "kind=latency", "target=node-200", "latency_ms=soon")
    assert bad.returncode != 0 and "latency_ms='soon'" in bad.stdout + bad.stderr
    cleared = pyinfra(net, "clear.py")
    assert cleared.returncode == 0, cleared.stdout[-800:]
    assert read_residue(testnet) == []


def test_forget_keeps_ledgers_with_an_open_fault_and_removes_closed_ones(
        net: Net, testnet: Testnet) -> None:
    from shakedown.errors import FaultError
    from shakedown.faults.docker import controller_ledger, host_ledger

    def forget_closed(testnet: Testnet) -> list[Path]:
        return [Path(p) for p in Injector.for_testnet(testnet).forget()]

    inj = Injector.for_testnet(testnet)
    entry = inj.apply("pause", "gateway")
    with pytest.raises(FaultError, match=rf"1 fault\(s\) still open \({entry.id} pause"):
        forget_closed(testnet)
    assert controller_ledger(testnet).path.exists() and host_ledger(testnet).path.exists()
    inj.clear_all()
    removed = forget_closed(testnet)
    assert controller_ledger(testnet).path in removed and host_ledger(testnet).path in removed
    assert not controller_ledger(testnet).path.exists()
    assert not host_ledger(testnet).path.exists()
    assert Injector.for_testnet(testnet).entries() == [] and read_residue(testnet) == []
    assert forget_closed(testnet) == []  # nothing left: nothing to do
