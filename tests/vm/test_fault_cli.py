"""Host faults from the CLI and the pyinfra scripts, on the fast lane's SSH hosts.

Steps: three VM-like containers; an inventory file naming them (h1-h3, no testnet data, so
the SSH way; h3 carries ``services: {"app": "sdvm-app.service"}``). ``shakedown fault add``
on a host and on a service, with their effects (ping, HTTP); ``list``; ``clear`` by id and
all; a TTL that heals with the CLI gone; bad input is one line, exit 2, nothing applied.
Then the pyinfra scripts against the same inventory (tbf toward one address measured, TTL,
clear.py), and forgetting the ledgers once every fault is closed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shakedown.errors import FaultError
from shakedown.faults import Injector
from shakedown.faults.hostinv import DEFAULT_LEDGER, host_services
from shakedown.faults.ssh import SSHTarget
from shakedown.vm.sshhosts import SSHHosts
from shakedown.waiting import wait_for
from tests.deploy.testnets import REPO, run_cli
from tests.vm.measure import ping, throughput_kbit
from tests.vm.test_ssh_hosts import app_down


@pytest.fixture(scope="module")
def ssh_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHosts]:
    with SSHHosts(count=3, run_dir=tmp_path_factory.mktemp("sdvm-cli")) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def inv(ssh_hosts: SSHHosts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory of the three hosts; the controller's ledgers go to a temporary dir."""
    state = tmp_path_factory.mktemp("controller")
    hosts = []
    for h in ssh_hosts.hosts:
        data = {"ssh_hostname": h.address, "ssh_user": "root", "ssh_key": h.ssh.key_file,
                "ssh_known_hosts_file": str(h.ssh.known_hosts),
                "ssh_strict_host_key_checking": "yes"}
        if h.name == "h3":
            data["services"] = {"app": "sdvm-app.service"}
        hosts.append((h.name, data))
    path = state / "vms.py"
    path.write_text(f"vms = ({hosts!r}, {{'record_path': {str(state / 'deployment.json')!r}}})\n")
    return path


@pytest.fixture
def clean(ssh_hosts: SSHHosts, inv: Path) -> Iterator[None]:
    """Heal at both ends; afterwards nothing of ours may be left on the hosts."""
    run_cli("fault", "clear", "-i", str(inv))
    yield
    cleared = run_cli("fault", "clear", "-i", str(inv))
    assert cleared.returncode == 0, cleared.stderr
    targets = [h.ssh for h in ssh_hosts.hosts]
    assert read_host_residue(targets, DEFAULT_LEDGER) == []


def read_host_residue(targets: list[SSHTarget], testnet: str) -> list[str]:
    with Injector.on_hosts(testnet, targets, Path("/dev/null/unused")) as look:
        return look.residue()


def forget_closed_on_hosts(testnet: str, targets: list[SSHTarget], state: Path) -> list[str]:
    with Injector.on_hosts(testnet, targets, state) as inj:
        return inj.forget()


def cli(inv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("fault", *args, "-i", str(inv))


def fault_id(text: str) -> str:
    found = re.search(r"\b(f-[0-9a-f]{8})\b", text)
    assert found, text
    return found.group(1)


def test_services_of_the_inventory(inv: Path) -> None:
    assert host_services(inv) == {"app": ("h3", "sdvm-app.service")}


def test_cli_partition_on_a_host_lists_and_clears_by_id(ssh_hosts: SSHHosts, inv: Path,
                                                        clean: None) -> None:
    h1, h2, h3 = ssh_hosts.hosts
    added = cli(inv, "add", "partition", "h1", f"peers={h2.address}")
    assert added.returncode == 0, added.stderr
    assert "via iptables DROP" in added.stdout
    with Injector.on_hosts(DEFAULT_LEDGER, [h1.ssh], Path("/dev/null/unused")) as look:
        s = look.backend.session("h1")
        assert ping(s, h2.address, count=4, interval=0.1).loss_pct == 100
        assert ping(s, h3.address, count=4, interval=0.1).loss_pct == 0
        listed = cli(inv, "list")
        assert listed.returncode == 0, listed.stderr
        assert "hosts of shakedown (h1, h2, h3): 1 open faults" in listed.stdout
        expected = f"partition h1 direction=both peers={h2.address} ssh_port=22 [active]"
        assert expected in listed.stdout, listed.stdout
        residue = read_host_residue([h1.ssh], DEFAULT_LEDGER)
        assert any("open fault" in r for r in residue) and \
            any("iptables chain SHAKEDOWN" in r for r in residue), residue
        cleared = cli(inv, "clear", fault_id(added.stdout))
        assert cleared.returncode == 0 and "cleared 1 fault(s)" in cleared.stdout
        assert ping(s, h2.address, count=4, interval=0.1).loss_pct == 0


def test_cli_stops_a_service_named_in_the_inventory(ssh_hosts: SSHHosts, inv: Path,
                                                    clean: None) -> None:
    addr = ssh_hosts.hosts[2].address
    wait_for(lambda: app_down(addr), lambda e: e == "", timeout=20, what="sdvm-app up")
    added = cli(inv, "add", "stop", "app")
    assert added.returncode == 0, added.stderr
    assert "stop h3 unit=sdvm-app.service" in added.stdout
    assert app_down(addr) == "ConnectionRefusedError"
    cleared = cli(inv, "clear")
    assert "hosts of shakedown: cleared 1 fault(s)" in cleared.stdout, cleared.stdout
    wait_for(lambda: app_down(addr), lambda e: e == "", timeout=20, what="sdvm-app back")


def test_cli_ttl_heals_on_the_host_with_no_controller(ssh_hosts: SSHHosts, inv: Path,
                                                      clean: None) -> None:
    h2 = ssh_hosts.hosts[1]
    added = cli(inv, "add", "blackhole", "h2", "--ttl", "2s")
    assert added.returncode == 0, added.stderr  # the CLI process has exited now
    assert read_host_residue([h2.ssh], DEFAULT_LEDGER), "the blackhole was not applied"
    wait_for(lambda: read_host_residue([h2.ssh], DEFAULT_LEDGER), lambda r: r == [],
             timeout=90, interval=0.5, what="h2 heals by its TTL timer")
    listed = cli(inv, "list", "--all")
    assert "blackhole h2" in listed.stdout and "[cleared]" in listed.stdout, listed.stdout


def test_bad_cli_input_is_one_line_and_changes_nothing(ssh_hosts: SSHHosts, inv: Path,
                                                       clean: None) -> None:
    before = cli(inv, "list", "--all").stdout
    cases = {
        ("add", "lag", "h1"): "unknown fault kind 'lag'",
        ("add", "tbf", "h9", "rate_kbit=800"): "unknown target 'h9'",
        ("add", "db-stop", "h1"): "db-stop acts on Docker testnets",
        ("add", "latency", "h1", "latency_ms=5"): "give proxy=NAME api_port=PORT",
        ("add", "tbf", "h1", "rate_kbit=x"): "rate_kbit='x': expected",
        ("add", "tbf", "h1", "rate_kbit=800", "dst=nowhere"): "dst='nowhere'",
        ("add", "stop", "h1"): "missing parameter unit",
        ("add", "pause", "app", "--ttl", "soon"): "--ttl 'soon'",
        ("clear", "f-nope"): "no fault f-nope",
    }
    for args, message in cases.items():
        result = cli(inv, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert cli(inv, "list", "--all").stdout == before


def pyinfra(inv: Path, script: str, *data: str) -> subprocess.CompletedProcess[str]:
    args = [a for d in data for a in ("--data", d)]
    return subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inv), f"faults/{script}",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_pyinfra_scripts_on_ssh_hosts(ssh_hosts: SSHHosts, inv: Path, clean: None) -> None:
    h1, h2, _ = ssh_hosts.hosts
    applied = pyinfra(inv, "tbf.py", "target=h2", "rate_kbit=4000", f"dst={ssh_hosts.gateway}")
    assert applied.returncode == 0, (applied.stdout + applied.stderr)[-1500:]
    with Injector.on_hosts(DEFAULT_LEDGER, [h2.ssh], Path("/dev/null/unused")) as look:
        on_h2 = [e for e in look.backend.read_host_ledger("h2") if e.open]
        assert [(e.kind, e.target, e.params["rate_kbit"]) for e in on_h2] == [("tbf", "h2", 4000)]
        shaped = throughput_kbit(look.backend.session("h2"), ssh_hosts.gateway, nbytes=1_000_000)
        assert 0.65 * 4000 <= shaped <= 1.2 * 4000, f"tbf 4000 kbit/s measured {shaped:.0f}"
    listed = cli(inv, "list")
    assert "tbf h2" in listed.stdout, listed.stdout  # the CLI sees what pyinfra applied
    ttl = pyinfra(inv, "partition.py", "target=h1", f"peers={h2.address}", "ttl=2s")
    assert ttl.returncode == 0, (ttl.stdout + ttl.stderr)[-1500:]
    assert read_host_residue([h1.ssh], DEFAULT_LEDGER), "the partition was not applied"
    wait_for(lambda: read_host_residue([h1.ssh], DEFAULT_LEDGER), lambda r: r == [],
             timeout=30, interval=0.5, what="h1's partition healed by its TTL timer")
    stopped = pyinfra(inv, "process.py", "kind=pause", "target=app")
    assert stopped.returncode == 0, (stopped.stdout + stopped.stderr)[-1500:]
    assert app_down(ssh_hosts.hosts[2].address) == "TimeoutError"
    bad = pyinfra(inv, "tbf.py", "target=h2", "rate_kbit=soon")
    assert bad.returncode != 0 and "rate_kbit='soon'" in bad.stdout + bad.stderr
    cleared = pyinfra(inv, "clear.py")
    assert cleared.returncode == 0, (cleared.stdout + cleared.stderr)[-1500:]
    assert read_host_residue([h.ssh for h in ssh_hosts.hosts], DEFAULT_LEDGER) == []
    wait_for(lambda: app_down(ssh_hosts.hosts[2].address), lambda e: e == "", timeout=20,
             what="sdvm-app resumed by clear.py")
    again = pyinfra(inv, "clear.py")  # nothing open: nothing to do
    assert again.returncode == 0, (again.stdout + again.stderr)[-1500:]


def test_forget_keeps_open_ledgers_and_removes_closed_ones(ssh_hosts: SSHHosts,
                                                           tmp_path: Path) -> None:
    targets = [h.ssh for h in ssh_hosts.hosts]
    with Injector.on_hosts("sdforget", targets, tmp_path) as inj:
        entry = inj.apply("partition", "h1", {"peers": ssh_hosts.hosts[1].address})
        with pytest.raises(FaultError, match=r"1 fault\(s\) still open .* kept the fault ledgers"):
            forget_closed_on_hosts("sdforget", targets, tmp_path)
        assert [e.id for e in inj.backend.read_host_ledger("h1") if e.open] == [entry.id]
        inj.clear(entry)
    removed = forget_closed_on_hosts("sdforget", targets, tmp_path)
    assert "h1:/var/lib/shakedown/faults/sdforget.json" in removed, removed
    assert str(tmp_path / "host-faults.json") in removed
    with Injector.on_hosts("sdforget", targets, tmp_path) as inj:
        assert inj.entries() == []
        listing = inj.backend.session("h1").check(
            "ls -a /var/lib/shakedown/faults 2>/dev/null; true")
        assert "sdforget" not in listing, listing
    assert forget_closed_on_hosts("sdforget", targets, tmp_path) == []  # nothing left: no-op
