"""The fast lane: three VM-like containers (systemd + sshd, own addresses) as SSH hosts.

pyinfra reaches them over SSH with host keys checked; host faults apply and clear over SSH,
each effect measured from inside a host (ping) or from here (TCP, HTTP); the host's ledger
alone is enough to clear; a TTL heals on the host. This kernel has no sch_netem: netem is
refused with a line naming the module (the real-kernel lane proves netem on qemu VMs).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shakedown.errors import FaultError
from shakedown.faults import Injector
from shakedown.faults.ssh import targets_from_inventory
from shakedown.vm.sshhosts import SSHHosts
from shakedown.waiting import wait_for
from tests.vm.conftest import no_residue
from tests.vm.measure import ping, throughput_kbit

TESTNET = "sdfast"


@pytest.fixture(scope="module")
def ssh_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHosts]:
    with SSHHosts(count=3, run_dir=tmp_path_factory.mktemp("sdvm-hosts")) as hosts:
        yield hosts


@pytest.fixture
def host_inj(ssh_hosts: SSHHosts, tmp_path: Path) -> Iterator[Injector]:
    """An injector on the three hosts; afterwards nothing of ours may be left on them."""
    inj = Injector.on_hosts(TESTNET, [h.ssh for h in ssh_hosts.hosts], tmp_path)
    inj.clear_all()
    yield inj
    try:
        inj.clear_all()
        for h in ssh_hosts.hosts:
            left = no_residue(inj.backend.session(h.name))
            assert not left, f"{h.name}: a fault test left {left}"
    finally:
        inj.close()


def app_clock(address: str) -> float:
    """The clock that sdvm-app on ``address`` reports (seconds since the epoch)."""
    with urllib.request.urlopen(f"http://{address}:8080/", timeout=1) as r:
        return float(r.read())


def app_down(address: str) -> str:
    try:
        app_clock(address)
    except (urllib.error.URLError, OSError) as e:
        return type(getattr(e, "reason", e)).__name__
    return ""


def inventory(ssh_hosts: SSHHosts, path: Path, known_hosts: str) -> Path:
    hosts = [(h.address, {"ssh_user": "root", "ssh_key": h.ssh.key_file,
                          "ssh_known_hosts_file": known_hosts,
                          "ssh_strict_host_key_checking": "yes"}) for h in ssh_hosts.hosts]
    path.write_text(f"hosts = {hosts!r}\n")
    return path


def test_pyinfra_reaches_every_host_over_ssh_with_host_keys_checked(ssh_hosts: SSHHosts,
                                                                     tmp_path: Path) -> None:
    known = str(ssh_hosts.hosts[0].ssh.known_hosts)
    inv = inventory(ssh_hosts, tmp_path / "inventory.py", known)
    run = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inv), "exec", "--",
                          "cat /etc/hostname"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    for h in ssh_hosts.hosts:
        assert f"[{h.address}] {h.name}" in run.stdout + run.stderr, run.stdout[-2000:]
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    strange = inventory(ssh_hosts, tmp_path / "strange.py", str(empty))
    refused = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(strange), "exec",
                              "--", "true"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0, "an unknown host key was accepted"


def test_fault_targets_come_from_a_pyinfra_inventory(ssh_hosts: SSHHosts,
                                                     tmp_path: Path) -> None:
    known = str(ssh_hosts.hosts[0].ssh.known_hosts)
    targets = targets_from_inventory(inventory(ssh_hosts, tmp_path / "inv.py", known))
    assert [t.address for t in targets] == [h.address for h in ssh_hosts.hosts]
    inj = Injector.on_hosts(TESTNET, targets, tmp_path)
    assert inj.backend.session(targets[0].name).check("hostname").strip() == "h1"
    inj.close()


def test_partition_cuts_one_peer_only_and_clear_heals(ssh_hosts: SSHHosts,
                                                      host_inj: Injector) -> None:
    _, h2, h3 = ssh_hosts.hosts
    s = host_inj.backend.session("h1")
    entry = host_inj.apply("partition", "h1", {"peers": h2.address})
    assert ping(s, h2.address, count=5, interval=0.1).loss_pct == 100
    assert ping(s, h3.address, count=5, interval=0.1).loss_pct == 0
    assert s.check("hostname").strip() == "h1"  # SSH to the host still works
    host_inj.clear(entry)
    assert ping(s, h2.address, count=5, interval=0.1).loss_pct == 0
    assert host_inj.clear(entry).state == "cleared"


def test_tbf_toward_one_address_shapes_only_that_link(ssh_hosts: SSHHosts,
                                                      host_inj: Injector) -> None:
    s = host_inj.backend.session("h1")
    entry = host_inj.apply("tbf", "h1", {"rate_kbit": 4000, "dst": ssh_hosts.gateway})
    shaped = throughput_kbit(s, ssh_hosts.gateway, nbytes=1_000_000)
    assert 0.65 * 4000 <= shaped <= 1.2 * 4000, f"tbf 4000 kbit/s measured {shaped:.0f}"
    assert ping(s, ssh_hosts.hosts[1].address, count=3, interval=0.1).loss_pct == 0
    host_inj.clear(entry)
    free = throughput_kbit(s, ssh_hosts.gateway, nbytes=4_000_000)
    assert free > 3 * 4000, f"after clear only {free:.0f} kbit/s"


def test_netem_is_refused_here_with_a_line_naming_the_module(host_inj: Injector) -> None:
    with pytest.raises(FaultError, match="no sch_netem module") as raised:
        host_inj.apply("netem", "h1", {"delay_ms": 100})
    assert "\n" not in str(raised.value)
    failed = host_inj.entries()[-1]
    assert failed.kind == "netem" and failed.state == "failed"
    on_host = {e.id: e.state for e in host_inj.backend.read_host_ledger("h1")}
    assert on_host[failed.id] == "failed"  # recorded there too, rolled back


def test_a_new_controller_clears_from_the_host_ledger_alone(ssh_hosts: SSHHosts,
                                                            host_inj: Injector,
                                                            tmp_path: Path) -> None:
    h2 = ssh_hosts.hosts[1]
    targets = [h.ssh for h in ssh_hosts.hosts]
    first = Injector.on_hosts(TESTNET, targets, tmp_path / "first")
    first.apply("partition", "h1", {"peers": h2.address})
    first.close()  # the injector is gone; its controller ledger is not used again
    second = Injector.on_hosts(TESTNET, targets, tmp_path / "second")
    assert [e.kind for e in second.active()] == ["partition"]
    second.clear_all()
    assert ping(second.backend.session("h1"), h2.address, count=3, interval=0.1).loss_pct == 0
    second.close()


def test_ttl_heals_on_the_host(host_inj: Injector) -> None:
    s = host_inj.backend.session("h2")
    entry = host_inj.apply("tbf", "h2", {"rate_kbit": 1000}, ttl=2)
    assert " 5d: " in s.check("tc qdisc show dev eth0 root")
    healed = wait_for(lambda: {e.id: e for e in host_inj.backend.read_host_ledger("h2")}[entry.id],
                      lambda e: e.state == "cleared", timeout=30, interval=0.5,
                      what="h2: the tbf entry cleared by its TTL")
    assert healed.notes.get("cleared_by") == "ttl"
    assert " 5d: " not in s.check("tc qdisc show dev eth0 root")


def test_process_faults_on_a_unit(ssh_hosts: SSHHosts, host_inj: Injector) -> None:
    addr = ssh_hosts.hosts[2].address
    wait_for(lambda: app_down(addr), lambda e: e == "", timeout=20, what="sdvm-app up")
    for kind, symptom in (("stop", "ConnectionRefusedError"), ("kill", "ConnectionRefusedError"),
                          ("pause", "TimeoutError")):
        entry = host_inj.apply(kind, "h3", {"unit": "sdvm-app"})
        assert app_down(addr) == symptom, f"{kind}: the app still answers (or {app_down(addr)})"
        host_inj.clear(entry)
        wait_for(lambda: app_down(addr), lambda e: e == "", timeout=20,
                 what=f"sdvm-app back after clearing {kind}")
    assert host_inj.apply("restart", "h3", {"unit": "sdvm-app"}).state == "cleared"


def test_clock_skew_on_a_unit(ssh_hosts: SSHHosts, host_inj: Injector) -> None:
    addr = ssh_hosts.hosts[2].address
    entry = host_inj.apply("clock-skew", "h3", {"unit": "sdvm-app", "offset_s": 3600})
    skew = wait_for(lambda: app_clock(addr) - time.time(), lambda d: abs(d - 3600) < 30,
                    timeout=20, what="sdvm-app's clock 3600 s ahead")
    host_inj.clear(entry)
    back = wait_for(lambda: app_clock(addr) - time.time(), lambda d: abs(d) < 30,
                    timeout=20, what="sdvm-app's clock back")
    assert abs(skew - 3600) < 30 and abs(back) < 30
