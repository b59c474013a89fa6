"""The remote-path lanes: real qemu VMs (marked ``vm``, slow, only on request) and VM-like
containers (fast, every run). Each lane's fixtures tear down everything they made."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shakedown.faults import Injector
from shakedown.faults.ssh import Session
from shakedown.vm.qemu import VMLab

REPO = Path(__file__).resolve().parents[2]
LANE_RECORD = REPO / ".shakedown" / "bench" / "vm_lane.json"


@pytest.fixture(scope="session")
def figures() -> dict[str, object]:
    """What the real-VM lane measured; written with its wall time to .shakedown/bench/."""
    return {}


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory,
        figures: dict[str, object]) -> Iterator[VMLab]:
    """Two Debian VMs under qemu on a bridge of our own; the lane's wall time is recorded."""
    started = time.monotonic()
    with VMLab(count=2, run_dir=tmp_path_factory.mktemp("sdvm")) as vms:
        booted = time.monotonic() - started
        yield vms
    LANE_RECORD.parent.mkdir(parents=True, exist_ok=True)
    LANE_RECORD.write_text(json.dumps({
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "vms": 2,
        "image_and_boot_s": round(booted, 1), "boot_s": round(vms.boot_s, 1),
        "lane_s": round(time.monotonic() - started, 1), "pid": os.getpid(),
        "measured": figures}, indent=1) + "\n")


def no_residue(session: Session) -> list[str]:
    """Our qdiscs, our chain, our timers and TTL scripts left on a host."""
    out = session.run(
        "tc qdisc show | grep -E ' 5d[0-9a-f]*: ' | sed 's/^/qdisc: /'\n"
        "iptables -w 5 -S SHAKEDOWN 2>/dev/null | sed 's/^/iptables: /'\n"
        "systemctl list-units --all --no-legend 'shakedown-expire-*' 2>/dev/null "
        "| sed 's/^/unit: /'\n"
        "ls /run/shakedown/expire 2>/dev/null | sed 's/^/ttl script: /'\n").out
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def vm_inj(lab: VMLab, tmp_path: Path) -> Iterator[Injector]:
    """An injector on the lab's VMs; afterwards every fault is cleared, nothing left behind."""
    inj = Injector.on_hosts("sdvmtest", [vm.ssh for vm in lab.vms], tmp_path)
    inj.clear_all()  # heal at both ends
    yield inj
    try:
        inj.clear_all()
        for vm in lab.vms:
            left = no_residue(inj.backend.session(vm.name))
            assert not left, f"{vm.name}: a fault test left {left}"
    finally:
        inj.close()
