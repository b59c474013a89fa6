"""Wall time of smoke and each chaos scenario, and where it goes.

Usage: ``.venv/bin/python bench/scenarios.py [NAME ...] [--no-verify] [--rounds 1]``
(default: smoke and every ``chaos-*`` scenario). Images are found (or built) first, so the
figures are for warm runs. Each scenario runs end to end as ``shakedown run`` does (fresh
testnet, workload, faults, checks with the verify suite, teardown), and its time is split
into deploy, workload (less the time spent applying and clearing faults), faults, settle,
verify, the other checks, teardown and the rest (planning, images, logs, reports).

Floor: the scenario's own planned time (how long its workload is scheduled to run), so the
ratio says how much the machinery adds around the part a scenario cannot skip.

Prints the machine, then one row per scenario.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from shakedown.machine import describe
from shakedown.scenarios.catalogue import catalogue, get
from shakedown.scenarios.report import result_json
from shakedown.scenarios.runner import RunOptions, resolve_images, run_scenario

SHARES = ("deploy", "workload", "faults", "settle", "verify", "checks", "teardown", "other")


def bench(name: str, rounds: int, verify: bool, runs_dir: Path) -> dict:
    walls, timings, verdicts = [], [], []
    for k in range(rounds):
        result = run_scenario(get(name), RunOptions(seed=100 + k, runs_dir=runs_dir,
                                                    verify=verify, say=lambda line: None))
        if result.interrupted:
            raise KeyboardInterrupt  # the run tore down; stop the benchmark here
        data = result_json(result)
        walls.append(result.duration_s)
        timing = dict(data["timing"])
        timing["workload"] = max(0.0, timing["workload"] - timing["faults"])
        timings.append(timing)
        verdicts.append(result.verdict)
    share = {s: statistics.median(t[s] for t in timings) for s in SHARES}
    return {"name": name, "wall": statistics.median(walls), "share": share,
            "planned": get(name).workload_end_s, "verdicts": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--runs-dir", type=Path, help="keep the run directories here "
                                                      "(default: a temporary directory)")
    args = parser.parse_args()
    names = args.names or ["smoke", *(n for n in catalogue() if n.startswith("chaos-"))]
    print(f"machine: {describe()}")
    resolve_images(False, print)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scenarios-") as tmp:
        for name in names:
            row = bench(name, args.rounds, not args.no_verify, args.runs_dir or Path(tmp))
            rows.append(row)
            print(f"{name}: {row['wall']:.1f} s ({', '.join(row['verdicts'])})", flush=True)
    print()
    print("| scenario | wall | planned (ratio) | " + " | ".join(SHARES) + " | verdict |")
    print("|---|---|---|" + "---|" * len(SHARES) + "---|")
    for r in rows:
        shares = " | ".join(f"{r['share'][s]:.1f} s ({r['share'][s] / r['wall']:.0%})"
                            for s in SHARES)
        print(f"| {r['name']} | {r['wall']:.1f} s | {r['planned']:.0f} s "
              f"({r['wall'] / max(r['planned'], 1):.1f}x) | {shares} | "
              f"{'/'.join(r['verdicts'])} |")


if __name__ == "__main__":
    main()
