"""netem for real: two Debian VMs under qemu, faults applied over SSH, effects measured.

Steps: boot two VMs on a bridge of ours (once per session); measure the baseline; apply a
fault on vm1 (toward vm2 only, or its whole NIC) through ``Injector``; measure with pings
or a TCP transfer from inside vm1; clear; measure again. The TTL test applies from a separate
controller process that exits at once, and waits for vm1 to heal by itself.

Run: ``.venv/bin/pytest -m vm tests/vm`` (deselected otherwise; about 3-5 minutes here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from shakedown.errors import FaultError
from shakedown.faults import Injector
from shakedown.vm.qemu import VMLab
from shakedown.waiting import wait_for
from tests.vm.measure import ping, throughput_kbit

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def baseline(lab: VMLab) -> float:
    """vm1 -> vm2 average RTT before any fault (about 1-4 ms under TCG)."""
    from shakedown.faults.ssh import Session

    with Session(lab.vms[0].ssh) as s:
        return ping(s, lab.vms[1].address, count=20, interval=0.1).avg_ms


def test_delay_and_jitter_toward_one_peer_then_clear(lab: VMLab, vm_inj: Injector,
                                                     baseline: float, figures: dict) -> None:
    vm2 = lab.vms[1]
    s = vm_inj.backend.session("vm1")
    gateway = lab.vms[0].address.rsplit(".", 1)[0] + ".1"
    to_gateway = ping(s, gateway, count=10, interval=0.1).avg_ms
    entry = vm_inj.apply("netem", "vm1", {"delay_ms": 100, "jitter_ms": 10,
                                          "dst": vm2.address})
    faulted = ping(s, vm2.address, count=30, interval=0.2)
    assert abs(faulted.avg_ms - baseline - 100) <= 12, \
        f"vm1->vm2 RTT {faulted.avg_ms:.1f} ms with delay 100 ms (baseline {baseline:.1f} ms)"
    assert 2 <= faulted.mdev_ms <= 15, f"jitter 10 ms gave mdev {faulted.mdev_ms:.1f} ms"
    other = ping(s, gateway, count=10, interval=0.1).avg_ms
    assert other < to_gateway + 20, f"the bridge address is delayed too: {other:.1f} ms"
    vm_inj.clear(entry)
    healed = ping(s, vm2.address, count=20, interval=0.1).avg_ms
    figures["delay"] = {"asked_ms": "100 +- 10", "baseline_ms": baseline,
                        "avg_ms": faulted.avg_ms, "mdev_ms": faulted.mdev_ms,
                        "other_peer_ms": other, "after_clear_ms": healed}
    assert healed < baseline + 15, f"after clear vm1->vm2 RTT is {healed:.1f} ms"
    assert vm_inj.clear(entry).state == "cleared"  # a second clear is harmless


def test_loss_toward_one_peer_is_about_what_was_asked(lab: VMLab, vm_inj: Injector,
                                                      figures: dict) -> None:
    vm2 = lab.vms[1]
    s = vm_inj.backend.session("vm1")
    entry = vm_inj.apply("netem", "vm1", {"loss_pct": 20, "dst": vm2.address})
    measured = ping(s, vm2.address, count=200, interval=0.05)
    figures["loss"] = {"asked_pct": 20, "pings": 200, "lost_pct": measured.loss_pct}
    # 200 pings at p=0.2: sd 2.8 points; 10-32 % is about -3.5 to +4.2 sd.
    assert 10 <= measured.loss_pct <= 32, f"netem loss 20% measured {measured.loss_pct:.1f}%"
    vm_inj.clear(entry)
    assert ping(s, vm2.address, count=50, interval=0.05).loss_pct <= 2


def test_duplicate_on_the_whole_nic(lab: VMLab, vm_inj: Injector, figures: dict) -> None:
    s = vm_inj.backend.session("vm1")
    vm_inj.apply("netem", "vm1", {"duplicate_pct": 30})
    measured = ping(s, lab.vms[1].address, count=60, interval=0.05)
    figures["duplicate"] = {"asked_pct": 30, "pings": 60, "duplicates": measured.duplicates}
    assert 5 <= measured.duplicates <= 35, f"duplicate 30% gave {measured.duplicates}/60"


def test_second_tc_fault_on_a_nic_is_refused_and_already_gone_counts_as_cleared(
        lab: VMLab, vm_inj: Injector) -> None:
    s = vm_inj.backend.session("vm1")
    first = vm_inj.apply("netem", "vm1", {"delay_ms": 50})
    with pytest.raises(FaultError, match="already carries a shakedown qdisc"):
        vm_inj.apply("tbf", "vm1", {"rate_kbit": 1000})
    assert " 5d: " in s.check("tc qdisc show dev eth0 root")  # the first one is intact
    s.check("tc qdisc del dev eth0 root")  # someone removed it by hand
    assert vm_inj.clear(first).state == "cleared"
    states = {e.id: e.state for e in vm_inj.backend.read_host_ledger("vm1")}
    assert states[first.id] == "cleared"


def test_tbf_rate_is_about_what_was_asked(lab: VMLab, vm_inj: Injector,
                                          figures: dict) -> None:
    vm1 = lab.vms[0]
    gateway = vm1.address.rsplit(".", 1)[0] + ".1"
    s = vm_inj.backend.session("vm1")
    free = throughput_kbit(s, gateway, nbytes=2_000_000)
    entry = vm_inj.apply("tbf", "vm1", {"rate_kbit": 4000, "dst": gateway})
    shaped = throughput_kbit(s, gateway, nbytes=1_000_000)
    figures["tbf"] = {"asked_kbit": 4000, "unshaped_kbit": free, "shaped_kbit": shaped}
    assert free > 3 * 4000, f"unshaped vm1->host only {free:.0f} kbit/s: cannot tell"
    assert 0.65 * 4000 <= shaped <= 1.2 * 4000, f"tbf 4000 kbit/s measured {shaped:.0f}"
    vm_inj.clear(entry)


def test_ttl_fault_heals_with_the_controller_gone(lab: VMLab, vm_inj: Injector,
                                                   baseline: float, tmp_path: Path,
                                                   figures: dict) -> None:
    vm1, vm2 = lab.vms
    ttl = 20
    controller = (
        "import json, sys\n"
        "from shakedown.faults import Injector\n"
        "from shakedown.faults.ssh import SSHTarget\n"
        "t = SSHTarget(**json.loads(sys.argv[1]))\n"
        f"inj = Injector.on_hosts('sdvmtest', [t], {str(tmp_path)!r})\n"
        f"e = inj.apply('netem', 'vm1', {{'delay_ms': 100}}, ttl={ttl})\n"
        "print(e.id)\n")
    proc = subprocess.run([sys.executable, "-c", controller, json.dumps(asdict(vm1.ssh))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    entry_id = proc.stdout.strip()  # the controller process has exited
    gone = time.monotonic()
    s = vm_inj.backend.session("vm1")
    assert ping(s, vm2.address, count=5, interval=0.2).avg_ms > baseline + 80
    wait_for(lambda: s.check("tc qdisc show dev eth0 root"), lambda out: " 5d: " not in out,
             timeout=ttl + 60, interval=1, what="vm1: netem gone after its TTL")
    figures["ttl"] = {"ttl_s": ttl, "healed_after_controller_exit_s": time.monotonic() - gone}
    assert ping(s, vm2.address, count=10, interval=0.1).avg_ms < baseline + 15
    healed = {e.id: e for e in vm_inj.backend.read_host_ledger("vm1")}[entry_id]
    assert healed.state == "cleared" and healed.notes.get("cleared_by") == "ttl", healed
