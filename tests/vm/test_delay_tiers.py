"""latency-tiers' delay tiers on a real kernel: four qemu VMs in three groups, the tiers'
netem faults (10 / 100 / 300 ms, per destination, each direction) applied through the same
``tier_faults`` the scenario uses, the round trip of every pair measured, then cleared.

Groups: A = vm1, vm2; B = vm3; C = vm4. A link is as bad as its farther group's tier, and
each end delays what it sends, so a pair's round trip gains twice its tier's delay.

Run: ``.venv/bin/pytest -m vm tests/vm/test_delay_tiers.py`` (deselected otherwise; it boots
four VMs of its own, about 3-5 minutes here).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shakedown.faults import Injector
from shakedown.faults.hosts import SSHBackend
from shakedown.scenarios.tiers import DELAY_TIERS, link_tier, tier_faults
from shakedown.vm.qemu import VMLab
from tests.vm.conftest import LANE_RECORD, no_residue
from tests.vm.measure import ping

pytestmark = pytest.mark.vm

TIERS_RECORD = LANE_RECORD.with_name("vm_delay_tiers.json")
GROUPS = {"A": ("vm1", "vm2"), "B": ("vm3",), "C": ("vm4",)}


@pytest.fixture(scope="module")
def lab4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VMLab]:
    with VMLab(count=4, run_dir=tmp_path_factory.mktemp("sdvm4")) as vms:
        yield vms


def group_of(vm: str) -> str:
    return next(g for g, members in GROUPS.items() if vm in members)


def test_each_pair_gains_twice_its_tiers_delay_then_clears(lab4: VMLab, tmp_path: Path) -> None:
    vms = {vm.name: vm for vm in lab4.vms}
    inj = Injector.on_hosts("sdtiers", [vm.ssh for vm in lab4.vms], tmp_path)
    backend = inj.backend
    assert isinstance(backend, SSHBackend)
    try:
        pairs = list(itertools.combinations(sorted(vms), 2))

        def rtts(count: int) -> dict[tuple[str, str], float]:
            return {(a, b): ping(backend.session(a), vms[b].address, count=count,
                                 interval=0.2).avg_ms for a, b in pairs}

        baseline = rtts(10)
        entries = [inj.apply(f.kind, f.target, dict(f.params))
                   for f in tier_faults(GROUPS, DELAY_TIERS)]
        faulted = rtts(15)
        for e in entries:
            inj.clear(e)
        healed = rtts(10)
        order = tuple(GROUPS)
        tiers = {p: link_tier(group_of(p[0]), group_of(p[1]), order) for p in pairs}
        TIERS_RECORD.parent.mkdir(parents=True, exist_ok=True)
        asked = {p: 2 * DELAY_TIERS[tier].delay_ms for p, tier in tiers.items()}
        TIERS_RECORD.write_text(json.dumps({
            f"{a}-{b}": {"tier": tiers[(a, b)], "asked_rtt_ms": asked[(a, b)],
                         "baseline_ms": baseline[(a, b)], "faulted_ms": faulted[(a, b)],
                         "after_clear_ms": healed[(a, b)]} for a, b in pairs}, indent=1) + "\n")
        for a, b in pairs:
            added, want = faulted[(a, b)] - baseline[(a, b)], asked[(a, b)]
            assert abs(added - want) <= max(8, 0.1 * want), \
                f"{a}->{b} (tier {tiers[(a, b)]}): RTT +{added:.1f} ms, asked +{want} ms"
            assert healed[(a, b)] < baseline[(a, b)] + 15, \
                f"{a}->{b}: {healed[(a, b)]:.1f} ms after clear (baseline {baseline[(a, b)]:.1f})"
        for name in vms:
            assert not no_residue(backend.session(name)), f"{name}: tiers left residue"
    finally:
        inj.clear_all()
        inj.close()
