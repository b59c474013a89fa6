"""Time the verify suite on a loaded 3-node testnet against its floor, measured in the same run.

Usage: ``.venv/bin/python bench/verify.py [--envelopes 100000] [--inventory INV] [--keep]
[--rounds 3]``.
Without ``--inventory`` it deploys a fresh testnet (``sdvb-...``), publishes the envelopes
through refnode's own publish path (``Traffic``: straight to each node with two payers, and
through the gateway), waits until the nodes converge, and takes it down at the end. With
``--inventory`` it times an already deployed testnet as it is.

Figures, each the wall time of ``pytest verify/`` as a user runs it (a subprocess):

- ``cold``: no kept verdicts: every envelope's two signatures recovered (process pool);
  median of ``--rounds`` runs, each followed by its floor;
- ``warm``: median of three runs with the verdicts the cold run kept;
- ``startup``: ``pytest verify/ --collect-only`` (interpreter, imports, collection);
- floor ``warm reads``: the suite's chain RPC calls and SQL reads issued bare (per-node reads
  in parallel as the suite issues them), plus the fault check's engine reads;
- floor ``cold reads``: the warm reads plus every index row and envelope the cold run pulls;
- ``open``: opening every envelope once on every core (the same recoveries, split over all
  cores); the cold run's floor is ``cold reads`` plus ``open``, one after the other.

Prints the machine, then one row per figure with the ratio to its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from refnode.envelopes import Signer
from shakedown import observe
from shakedown.chain.contracts import CONTRACT_NAMES
from shakedown.chain.ops import Chain
from shakedown.keys import admin_account, payer
from shakedown.machine import describe
from shakedown.ports import free_port_base
from shakedown.traffic import GatewayTarget, NodeTarget, Traffic
from shakedown.verify.membership import WIRING
from shakedown.verify.opened import open_all
from shakedown.verify.target import Target, resolve_target
from shakedown.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
PYTEST = Path(sys.executable).with_name("pytest")


def timed(fn: Callable[[], Any]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def suite(inventory: Path, cache: str, *args: str) -> tuple[float, dict[str, Any]]:
    """Wall time of one suite run, and its JSON summary."""
    out = Path(tempfile.mkdtemp(prefix="sdvb-")) / "summary.json"
    cmd = [str(PYTEST), "verify/", f"--inventory={inventory}", f"--json-summary={out}",
           f"--envelope-cache={cache}", "-q", "-p", "no:cacheprovider", *args]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - started
    if "--collect-only" in args:
        return wall, {}
    summary = json.loads(out.read_text())
    if not summary["passed"]:
        raise SystemExit(f"verify failed on the benchmark testnet:\n{done.stdout[-3000:]}")
    return wall, summary


def rpc_reads(chain: Chain, target: Target) -> None:
    """The chain calls the suite makes."""
    for field in CONTRACT_NAMES:
        chain.w3.eth.get_code(getattr(chain.addresses, field))
    for field, getter, _ in WIRING:
        getattr(getattr(chain.contracts, field).functions, getter)().call()
    for node in target.nodes:
        chain.get_node(node.node_id)
        chain.get_node(node.node_id)
    chain.canonical_node_ids()
    chain.canonical_node_ids()
    chain.all_nodes()
    chain.rates()


def node_reads(conn: psycopg.Connection, cold: bool) -> None:
    """The SQL reads the suite issues on one node's database (cold: also what it pulls)."""
    observe.read_node_info(conn)
    observe.read_vector_clock(conn)
    observe.read_originator_digests(conn)
    for table in observe.ENVELOPE_TABLES:
        observe.read_sequence_summary(conn, table)
    observe.read_index_digests(conn)
    observe.read_usage_by_minute(conn)
    if cold:
        rows = observe.read_envelope_index(conn)
        observe.read_envelope_blobs(conn, [(r.originator_node_id, r.sequence_id) for r in rows])


def floor(target: Target, cold: bool) -> float:
    """The suite's reads, bare: RPC, then each node's SQL in parallel, then the engine's."""
    from shakedown.faults.inventory import read_residue

    conns = [psycopg.connect(n.dsn, autocommit=True) for n in target.nodes]
    chain = Chain.connect(target.chain_rpc, target.contracts, admin_account())
    started = time.monotonic()
    rpc_reads(chain, target)
    # Cold, the suite pulls each envelope from one node only: the first pulls, others digest.
    with ThreadPoolExecutor(len(conns)) as pool:
        list(pool.map(lambda k: node_reads(conns[k], cold and k == 0), range(len(conns))))
    read_residue(target.testnet)
    elapsed = time.monotonic() - started
    for conn in conns:
        conn.close()
    return elapsed


def open_floor(target: Target) -> tuple[float, int]:
    with psycopg.connect(target.nodes[0].dsn, autocommit=True) as conn:
        rows = observe.read_envelope_index(conn)
        blobs = list(observe.read_envelope_blobs(
            conn, [(r.originator_node_id, r.sequence_id) for r in rows]).values())
    return timed(lambda: open_all(blobs)), len(blobs)


def deploy_and_load(folder: Path, envelopes: int) -> Path:
    """A fresh testnet holding ``envelopes`` published envelopes, converged."""
    name = f"sdvb-{uuid.uuid4().hex[:6]}"
    inventory = folder / "inventory.py"
    data = {"testnet": name, "roles": ["chain", "proxy", "db", "node", "gateway"], "nodes": 3,
            "port_base": free_port_base(3), "record_path": str(folder / "deployment.json")}
    inventory.write_text(f"docker_hosts = [('@local', {data!r})]\n")
    cli("up", inventory)
    record = json.loads((folder / "deployment.json").read_text())
    targets: list[NodeTarget | GatewayTarget] = [NodeTarget(n["grpc"], n["node_id"])
                                                 for n in record["nodes"]]
    targets.append(GatewayTarget(record["gateway"]["grpc"]))
    started, acked, failed = time.monotonic(), 0, 0
    while acked < envelopes:  # a batch that timed out on a busy machine is sent again
        stats = Traffic(targets, rate=0, duration_s=3600, max_envelopes=envelopes - acked,
                        batch=500, workers=4, payers=[Signer(bytes(payer(i).key))
                                                      for i in range(2)], timeout=120).run()
        acked, failed = acked + stats.acked, failed + stats.failed
    print(f"published {acked} envelopes in {time.monotonic() - started:.1f} s "
          f"({failed} timed out and were sent again)", flush=True)
    dsns = [n["dsn"] for n in record["nodes"]]

    def counts() -> list[int]:
        out = []
        for dsn in dsns:
            with psycopg.connect(dsn) as conn:
                out.append(observe.read_envelope_count(conn))
        return out

    wait_for(counts, lambda c: len(set(c)) == 1 and c[0] >= acked, timeout=600,
             interval=1, what=f"{name}: nodes converge")
    return inventory


def cli(command: str, inventory: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "shakedown.cli", command, "-i", str(inventory)],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"shakedown {command} failed: {done.stderr or done.stdout}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=100_000)
    parser.add_argument("--inventory", type=Path, help="time this deployed testnet as it is")
    parser.add_argument("--keep", action="store_true", help="leave the fresh testnet up")
    parser.add_argument("--rounds", type=int, default=3, help="cold runs, each with its floor")
    args = parser.parse_args()
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="sdvb-"))
    inventory = args.inventory or deploy_and_load(folder, args.envelopes)
    print(f"inventory: {inventory}", flush=True)
    try:
        target = resolve_target(inventory)
        with psycopg.connect(target.nodes[0].dsn) as conn:
            held = observe.read_envelope_count(conn)
        print(f"testnet {target.testnet.name}: {held} envelopes on each of "
              f"{len(target.nodes)} nodes", flush=True)
        cache = str(folder / "cache")
        startup, _ = suite(inventory, cache, "--collect-only")
        # Each round: a cold run (a fresh cache), then its floor; medians over the rounds.
        colds, cold_floors, openings = [], [], []
        cold_summary: dict[str, Any] = {}
        for k in range(args.rounds):
            cache = str(folder / f"cache-{k}")
            seconds, cold_summary = suite(inventory, cache)
            colds.append(seconds)
            cold_floors.append(floor(target, cold=True))
            opening, opened = open_floor(target)
            openings.append(opening)
        cold = statistics.median(colds)
        cold_floor, opening = statistics.median(cold_floors), statistics.median(openings)
        floors = [f + o for f, o in zip(cold_floors, openings, strict=True)]
        warm_runs = [suite(inventory, cache)[0] for _ in range(3)]
        warm = statistics.median(warm_runs)
        warm_floor = statistics.median(floor(target, cold=False) for _ in range(3))
        rows = [
            (f"suite, cold (every signature recovered), median of {args.rounds}", cold,
             statistics.median(floors)),
            ("suite, warm (kept verdicts), median of 3", warm, warm_floor),
            ("  startup: pytest --collect-only", startup, None),
            ("  floor: warm reads bare", warm_floor, None),
            ("  floor: cold reads bare", cold_floor, None),
            (f"  open {opened} envelopes on every core", opening, None),
            ("  floor: cold reads + open", statistics.median(floors), None),
        ]
        print("cold runs: " + ", ".join(f"{c:.2f} s ({c / f:.2f}x its floor {f:.2f} s)"
                                        for c, f in zip(colds, floors, strict=True)))
        print(f"cold run stats: {cold_summary.get('stats')}; warm runs: "
              f"{', '.join(f'{w:.2f}' for w in warm_runs)} s; load average now "
              f"{os.getloadavg()[0]:.1f}")
        for label, seconds, base in rows:
            ratio = f"{seconds / base:5.2f}x floor" if base else ""
            print(f"{label:<48} {seconds:7.2f} s  {ratio}")
    finally:
        if args.inventory is None and not args.keep:
            cli("down", inventory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
