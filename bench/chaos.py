"""The chaos engine's figures: events per minute, one snapshot against its bare reads, shrink.

Usage: ``.venv/bin/python bench/chaos.py [--events 40] [--seed 5] [--envelopes 3000]
[--shrink]``.

1. A chaos run of ``--events`` events on a fresh 3-node testnet (no verify suite): events per
   minute over the events phase, with and without the time checkpoints waited.
2. On the same testnet, kept up, with ``--envelopes`` more published and replicated: one
   snapshot (every node's database in one transaction, health, the chain at one block) cold
   (fresh connections, every envelope parsed once; median of 5) and warm (median of 5),
   with a profile of one cold snapshot, against its floor: the same SQL,
   health and RPC reads issued bare (no parsing, no records built), in the same run.
3. With ``--shrink``: for each planted bug, the wall time of the detecting run, of
   ``--shrink`` (runs and events before and after) and of the replay, through the CLI.

Prints the machine, then one row per figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from web3 import Web3

from refnode.envelopes import Signer
from shakedown import observe
from shakedown.chain.contracts import Contracts
from shakedown.chain.records import ContractAddresses
from shakedown.chaos.engine import ChaosSpec, chaos_scenario
from shakedown.chaos.snapshot import Snapshotter
from shakedown.client import GatewayClient, NodeClient
from shakedown.deploy.record import load_record
from shakedown.keys import payer
from shakedown.machine import describe
from shakedown.scenarios.history import read_history
from shakedown.scenarios.runner import RunOptions, run_scenario
from shakedown.traffic import GatewayTarget, NodeTarget, Traffic
from shakedown.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
PAYERS: list[str] = [str(payer(i).address) for i in range(3)]
COLD_ROUNDS = 5


def timed(fn: Callable[[], Any]) -> float:
    began = time.monotonic()
    fn()
    return time.monotonic() - began


def events_per_minute(run_dir: Path) -> tuple[int, float, float]:
    """(events ran, events phase seconds, of which checkpoints) from a run's history."""
    events = read_history(run_dir / "history.jsonl")
    start = next(e["t"] for e in events if e.get("f") == "phase" and e.get("phase") == "workload"
                 and e.get("state") == "start")
    end = next(e for e in events if e.get("f") == "phase" and e.get("phase") == "workload"
               and e.get("state") == "end")
    waited = sum(float(e.get("waited_s", 0)) for e in events if e.get("f") == "checkpoint"
                 and e.get("type") != "invoke" and not e.get("final"))
    return int(end.get("events", 0)), end["t"] - start, waited


class BareReads:
    """The snapshot's reads without parsing or records: the floor. Like the snapshotter it
    keeps one connection per database and one chain client; health opens a channel per call
    as the snapshotter does."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        self.conns = [psycopg.connect(n["dsn"], autocommit=True) for n in record["nodes"]]
        self.w3 = Web3(Web3.HTTPProvider(record["chain"]["rpc"]))
        self.contracts = Contracts.at(self.w3, ContractAddresses.from_dict(record["contracts"]))

    def read(self, cold: bool) -> None:
        fetched: set[tuple[int, int]] = set()  # as the snapshotter: each envelope's bytes once
        for node, conn in zip(self.record["nodes"], self.conns, strict=True):
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                rows = observe.read_envelope_index(conn)
                observe.read_vector_clock(conn)
                observe.read_unsettled_usage(conn)
                if cold:
                    keys = [(r.originator_node_id, r.sequence_id) for r in rows]
                    observe.read_envelope_blobs(conn, [k for k in keys if k not in fetched])
                    fetched.update(keys)
            with NodeClient(node["grpc"], timeout=2) as client:
                client.health()
        with GatewayClient(self.record["gateway"]["grpc"], timeout=2) as gateway:
            gateway.health()
        c = self.contracts
        at: dict[str, Any] = {"block_identifier": int(self.w3.eth.block_number)}
        c.node_registry.functions.getCanonicalNodes().call(**at)
        c.payer_registry.events.UsageSettled().get_logs(from_block=0,
                                                        to_block=at["block_identifier"])
        for who in PAYERS:
            c.payer_registry.functions.getBalance(who).call(**at)
            c.payer_registry.functions.getPendingWithdrawal(who).call(**at)
        count = c.rate_registry.functions.getRatesCount().call(**at)
        c.rate_registry.functions.getRates(0, count).call(**at)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def snapshot_cost(record: dict[str, Any], envelopes: int) -> list[tuple[str, float, float]]:
    targets: list[NodeTarget | GatewayTarget] = [NodeTarget(n["grpc"], int(n["node_id"]))
                                                 for n in record["nodes"]]
    Traffic(targets, rate=0, duration_s=300, max_envelopes=envelopes, batch=100,
            payers=[Signer(bytes(payer(i).key)) for i in range(3)]).run()
    probe = Snapshotter(record)
    gateways = {"gateway": record["gateway"]["grpc"]}

    def counts() -> list[int]:
        return [len(probe.read_node(n["name"]).envelopes) for n in record["nodes"]]

    wait_for(counts, lambda c: len(set(c)) == 1, timeout=300, interval=1, what="convergence")
    probe.close()
    # cold: fresh connections, chain client and nothing parsed, on both sides, inside the
    # timing; the rounds alternate which side goes first, so neither always finds the
    # databases' caches warmed by the other
    cold_s, bare_cold_s = [], []
    for i in range(COLD_ROUNDS):
        pair = [(bare_cold_s, lambda: _bare_cold(record)),
                (cold_s, lambda: _snapshot_cold(record, gateways))]
        for into, run in (pair if i % 2 == 0 else pair[::-1]):
            into.append(timed(run))
    print(f"  cold rounds (ms): snapshot {[round(x * 1000) for x in cold_s]}, "
          f"bare {[round(x * 1000) for x in bare_cold_s]}")
    print(f"  one cold snapshot, its heaviest calls:\n{_profile_cold(record, gateways)}")
    floor, snap = BareReads(record), Snapshotter(record)
    floor.read(cold=True)
    snap.take(0.0, PAYERS, gateways)
    # warm rounds alternate, so a load swing on the shared machine hits both alike
    warm_s, bare_s = [], []
    for _ in range(5):
        warm_s.append(timed(lambda: snap.take(0.0, PAYERS, gateways)))
        bare_s.append(timed(lambda: floor.read(cold=False)))
    held = len(snap.read_node(record["nodes"][0]["name"]).envelopes)
    snap.close()
    floor.close()
    print(f"  (each node holds {held} envelopes)")
    return [(f"snapshot, cold (median of {COLD_ROUNDS})", statistics.median(cold_s),
             statistics.median(bare_cold_s)),
            ("snapshot, warm (median of 5)", statistics.median(warm_s),
             statistics.median(bare_s))]


def _bare_cold(record: dict[str, Any]) -> None:
    floor = BareReads(record)
    floor.read(cold=True)
    floor.close()


def _snapshot_cold(record: dict[str, Any], gateways: dict[str, str]) -> None:
    snap = Snapshotter(record)
    snap.take(0.0, PAYERS, gateways)
    snap.close()


def _profile_cold(record: dict[str, Any], gateways: dict[str, str]) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(_snapshot_cold, record, gateways)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def cli(*args: str) -> tuple[int, float, str]:
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "shakedown.cli", "chaos", *args], cwd=REPO,
                          capture_output=True, text=True)
    return proc.returncode, time.monotonic() - began, proc.stdout + proc.stderr


def shrink_figures(root: Path) -> None:
    for label, seed, env in (("dropped envelope", "6", "REFNODE_BUG_DROP_AFTER_RECONNECT_S=1"),
                             ("forgotten usage", "13", "REFNODE_BUG_FORGET_USAGE_ON_RESTART=1")):
        runs = root / label.replace(" ", "-")
        code, found_s, _ = cli("--seed", seed, "--events", "24", "--check-every", "8",
                               "--node-env", env, "--runs-dir", str(runs / "found"),
                               "--no-verify")
        (found,) = (runs / "found").iterdir()
        code2, shrink_s, _ = cli("--shrink", str(found), "--runs-dir", str(runs / "shrink"))
        shrunk = next((runs / "shrink").glob("*-chaos-shrink-*"))
        search = json.loads((shrunk / "shrink.json").read_text())
        code3, replay_s, _ = cli("--replay", str(shrunk), "--runs-dir", str(runs / "replay"),
                                 "--no-verify")
        print(f"  {label:17} detect {found_s:6.1f}s (exit {code}) | shrink {shrink_s:6.1f}s: "
              f"24 -> {len(search['minimal'])} events in {len(search['tries'])} runs, "
              f"property {search['property']} (exit {code2}) | replay {replay_s:5.1f}s "
              f"(exit {code3})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--envelopes", type=int, default=3000)
    ap.add_argument("--shrink", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    root = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    spec = ChaosSpec(events=args.events, check_every=10, duration_s=900)
    result = run_scenario(chaos_scenario("chaos-bench", spec),
                          RunOptions(seed=args.seed, runs_dir=root, keep=True, verify=False))
    try:
        ran, seconds, waited = events_per_minute(result.run_dir)
        print(f"run {result.run_dir.name}: verdict {result.verdict}, {ran} events")
        print(f"  events per minute: {60 * ran / seconds:.1f} over the events phase "
              f"({seconds:.1f}s); {60 * ran / max(seconds - waited, 1e-9):.1f} without the "
              f"{waited:.1f}s checkpoints waited")
        record = load_record(result.run_dir / "deployment.json")
        assert record is not None
        for name, measured, floor in snapshot_cost(record, args.envelopes):
            print(f"  {name:45} {measured * 1000:8.1f} ms | bare reads {floor * 1000:8.1f} ms"
                  f" | ratio {measured / floor:.2f}")
    finally:
        subprocess.run([sys.executable, "-m", "shakedown.cli", "down", "-i",
                        str(result.run_dir / "inventory.py")], cwd=REPO, capture_output=True)
    if args.shrink:
        shrink_figures(root)


if __name__ == "__main__":
    main()
