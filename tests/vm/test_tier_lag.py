"""latency-tiers' delay tiers with refnode on a real kernel: a systemd testnet on four qemu VMs
(one node each; groups A = node-100, node-200; B = node-300; C = node-400), deployed with
``shakedown up``, the scenario's own ``tier_faults`` with ``DELAY_TIERS`` (netem per
destination: 10 / 100 / 300 ms), and the propagation lag per tier measured as the scenario's
``TierLag`` measures it: envelopes published to every node in turn, every node's vector clock
polled, each arrival timed from its acknowledgement.

Each end delays what it sends, so no envelope reaches a peer sooner than its link tier's
delay after its publish call began, and the p50 lag with the tiers on must exceed the one
without them by about that delay, tier by tier (tier A's 10 ms lies inside the 50 ms
tolerance: TCG VMs do not resolve it; the round-trip test checks it). After the clear no fault
is left and every node converges. Figures go to .shakedown/bench/vm_tier_lag.json.

Run: ``.venv/bin/pytest -m vm tests/vm/test_tier_lag.py`` (deselected otherwise; it boots four
VMs under TCG and deploys the testnet onto them: about 6 min here, 8 with the image build).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from refnode.envelopes import Signer
from refnode.proto import refnode_pb2 as pb
from shakedown.client import NodeClient, payer_envelopes
from shakedown.deploy.record import load_record
from shakedown.faults import Injector
from shakedown.keys import payer
from shakedown.observe import read_vector_clock
from shakedown.scenarios.tiers import DELAY_TIERS, arrival_lags, lag_by_tier, tier_faults
from shakedown.scenarios.view import Call, Sample
from shakedown.verify.replication import wait_converged
from shakedown.vm.qemu import VMLab
from shakedown.waiting import wait_for
from tests.vm.conftest import LANE_RECORD

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
TESTNET = "sdtierlag"
FIGURES = LANE_RECORD.with_name("vm_tier_lag.json")
GROUPS = {"A": ("node-100", "node-200"), "B": ("node-300",), "C": ("node-400",)}
ROUNDS = 12  # envelopes published to each node, one round a second
POLL_S = 0.02


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    run_dir = tmp_path_factory.mktemp("sdtierlag")
    with VMLab(count=4, memory_mb=1024, run_dir=run_dir) as lab:
        group = {"testnet": TESTNET, "runtime": "systemd", "nodes": 4, "port_base": 27000,
                 "gateways": 0, "health_timeout": 900,
                 "record_path": str(run_dir / "deployment.json")}
        roles = [["chain", "proxy", "db", "node"]] + [["proxy", "db", "node"]] * 3
        path = lab.write_inventory(run_dir / "inventory.py", group, [{"roles": r} for r in roles])
        up = shakedown("up", "-i", str(path))
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        yield path
        down = shakedown("down", "-i", str(path))
        assert down.returncode == 0, down.stderr[-2000:]


def shakedown(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shakedown.cli", *args], capture_output=True,
                          text=True, timeout=3600, cwd=REPO)


class ClockPoller:
    """Every node's vector clock, read in a thread per node every ``POLL_S``, as samples."""

    def __init__(self, dsns: dict[str, str]) -> None:
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._poll, args=(n, d), daemon=True)
                         for n, d in dsns.items()]

    def __enter__(self) -> ClockPoller:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _poll(self, node: str, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=30) as conn:
            while not self._stop.is_set():
                clock = read_vector_clock(conn)
                sample = Sample(time.monotonic(), {node: {"clock": clock}})
                with self._lock:
                    self.samples.append(sample)
                self._stop.wait(POLL_S)

    def sorted(self) -> list[Sample]:
        with self._lock:
            return sorted(self.samples, key=lambda s: s.t)


def publish_rounds(record: dict[str, Any]) -> list[Call]:
    """One envelope to each node in turn, a round a second; each call with its acks."""
    signer = Signer(bytes(payer(0).key))
    calls = []
    clients = {n["name"]: (NodeClient(n["grpc"], timeout=60), int(n["node_id"]))
               for n in record["nodes"]}
    try:
        for r in range(ROUNDS):
            began = time.monotonic()
            for name, (client, node_id) in clients.items():
                invoked = time.monotonic()
                stored = client.publish(payer_envelopes(signer, node_id, 1,
                                                        topic=f"tier/{r}".encode()))
                acks = tuple(_ack(env) for env in stored)
                calls.append(Call("publish", name, invoked, time.monotonic(), "ok", acks))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))  # the round's pace
    finally:
        for client, _ in clients.values():
            client.close()
    return calls


def _ack(env: pb.OriginatorEnvelope) -> tuple[int, int]:
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    return unsigned.originator_node_id, unsigned.originator_sequence_id


def measure(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per tier, the lag of every envelope to every other node (seconds): from its ack, as
    TierLag reports it, and from its publish call's start, which no arrival can precede."""
    dsns = {n["name"]: n["dsn"] for n in record["nodes"]}
    origin_of = {int(n["node_id"]): n["name"] for n in record["nodes"]}
    with ClockPoller(dsns) as poller:
        start = time.monotonic()
        calls = publish_rounds(record)
        acked_before = time.monotonic()
        want = {(o, s) for c in calls for o, s in c.acks}
        wait_for(lambda: _covered(poller.sorted(), len(dsns), want), bool, timeout=120,
                 interval=0.5, what="every node's clock covers every ack")
    samples, until = poller.sorted(), time.monotonic()
    lags, missing = arrival_lags(calls, samples, origin_of, sorted(dsns), start, acked_before,
                                 until)
    assert not missing, f"never arrived: {missing}"
    sent = [dataclasses.replace(c, completed=c.invoked) for c in calls]
    since_sent, _ = arrival_lags(sent, samples, origin_of, sorted(dsns), start, acked_before,
                                 until)
    return lag_by_tier(lags, GROUPS, digits=3), lag_by_tier(since_sent, GROUPS, digits=3)


def _covered(samples: list[Sample], nodes: int, want: set[tuple[int, int]]) -> bool:
    latest: dict[str, dict[int, int]] = {}
    for s in samples:
        latest.update({n: v["clock"] for n, v in s.nodes.items()})
    return len(latest) == nodes and all(c.get(o, 0) >= q for c in latest.values()
                                        for o, q in want)


def test_each_tier_adds_its_delay_to_the_propagation_lag(inventory: Path) -> None:
    record = load_record(inventory.parent / "deployment.json")
    assert record is not None
    assert [n["name"] for n in record["nodes"]] == ["node-100", "node-200", "node-300",
                                                    "node-400"]
    baseline, baseline_since_sent = measure(record)
    inj = Injector.for_inventory(inventory)
    try:
        for f in tier_faults(GROUPS, DELAY_TIERS):
            inj.apply(f.kind, f.target, dict(f.params))
        tiered, since_sent = measure(record)
        inj.clear_all()
        assert not inj.active() and not inj.residue(), f"tiers left {inj.residue()}"
    finally:
        inj.clear_all()
        inj.close()
    conns = {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=30)
             for n in record["nodes"]}
    try:
        wait_converged(conns, {int(n["node_id"]) for n in record["nodes"]}, timeout=300)
    finally:
        for c in conns.values():
            c.close()
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps({
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "vms": 4, "rounds": ROUNDS,
        "poll_s": POLL_S, "groups": GROUPS,
        "delay_ms": {t: link.delay_ms for t, link in DELAY_TIERS.items()},
        "baseline": baseline, "baseline_since_sent": baseline_since_sent, "tiered": tiered,
        "tiered_since_sent": since_sent},
        indent=1) + "\n")
    print(f"baseline {baseline}\ntiered {tiered}\nsince sent {since_sent}")
    p50 = [float(tiered[t]["p50_s"]) for t in DELAY_TIERS]
    assert p50 == sorted(p50), f"p50 lag per tier A, B, C: {p50}; the farther, the later"
    for tier, link in DELAY_TIERS.items():
        delay = link.delay_ms / 1000
        assert float(since_sent[tier]["min_s"]) >= delay, \
            f"tier {tier}: an envelope reached a peer {since_sent[tier]['min_s']}s after it " \
            f"was sent, sooner than the tier's {delay}s delay allows"
        added = float(tiered[tier]["p50_s"]) - float(baseline[tier]["p50_s"])
        # the poll's and TCG's jitter on both sides: a quarter of the delay or 50 ms
        assert abs(added - delay) <= max(0.05, delay / 4), \
            f"tier {tier}: p50 lag {baseline[tier]['p50_s']}s -> {tiered[tier]['p50_s']}s " \
            f"(+{added:.3f}s), netem asked +{delay:.3f}s"
