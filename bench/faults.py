"""Fault apply-to-effect, per kind: the library (ledgers + mechanism) vs the raw call.

Deploys its own testnet (or uses ``-i INVENTORY`` of one already up), then for each kind:
start probing the effect every few ms, apply the fault, and take the send time of the first
probe that shows it (a slow answer through a latency toxic, a failed health check through a
blackhole or a paused node). The floor is the same effect from the bare mechanism (one
toxiproxy POST, one nsenter iptables, one docker pause) measured the same way, same run.

    .venv/bin/python bench/faults.py [--repeat 5] [-i INVENTORY]

Aim: <= 100 ms apply-to-effect through the library.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from shakedown.client import NodeClient
from shakedown.faults import Injector
from shakedown.faults.docker import DockerBackend
from shakedown.faults.ops import engine, in_netns
from shakedown.model import Testnet, load_inventory
from shakedown.ports import free_port_base
from shakedown.toxiproxy import ToxiproxyClient

REPO = Path(__file__).resolve().parents[1]
LATENCY_MS = 150


def probe_until(check: Callable[[], bool], started: float, limit: float = 10.0) -> float:
    """Seconds from ``started`` to the send time of the first probe for which check() holds."""
    while time.monotonic() - started < limit:
        sent = time.monotonic()
        if check():
            return sent - started
    raise RuntimeError("effect not seen within the limit")


def health_slow(endpoint: str) -> Callable[[], bool]:
    client = NodeClient(endpoint, timeout=2)

    def check() -> bool:
        t = time.monotonic()
        client.health()
        return time.monotonic() - t >= LATENCY_MS / 1000

    return check


def health_fails(endpoint: str) -> Callable[[], bool]:
    client = NodeClient(endpoint, timeout=0.25)

    def check() -> bool:
        try:
            client.health()
            return False
        except grpc.RpcError:
            return True

    return check


def measure(apply: Callable[[], object], clear: Callable[[], object],
            check: Callable[[], bool]) -> tuple[float, float]:
    """(apply call, effect seen) in seconds; the probe runs beside the apply call."""
    result: dict[str, float] = {}
    started = time.monotonic()
    prober = threading.Thread(target=lambda: result.update(effect=probe_until(check, started)))
    prober.start()
    apply()
    result["call"] = time.monotonic() - started
    prober.join()
    clear()
    time.sleep(0.3)  # let connections settle before the next round (not a measured wait)
    return result["call"], result["effect"]


def run(testnet: Testnet, repeat: int) -> dict[str, dict[str, list[float]]]:
    backend = DockerBackend.of(testnet)
    inj = Injector(backend)
    record = backend.record
    node = testnet.container("node-100")
    proxy_ip = backend.view().ip("proxy")
    via_proxy = f"{proxy_ip}:10100"  # the proxy container is ours; the host reaches it
    direct = record["nodes"][0]["grpc"]
    toxi = ToxiproxyClient(record["proxy"]["api"])
    rules = [["-s", proxy_ip, "-p", "tcp", "--dport", "5050", "-j", "DROP"],
             ["-d", proxy_ip, "-p", "tcp", "--sport", "5050", "-j", "DROP"]]

    def raw_block() -> None:
        for rule in rules:
            in_netns(node, ["iptables", "-I", "INPUT" if rule[0] == "-s" else "OUTPUT", *rule])

    def raw_unblock() -> None:
        for rule in rules:
            in_netns(node, ["iptables", "-D", "INPUT" if rule[0] == "-s" else "OUTPUT", *rule])

    container = engine().containers.get(node)
    cases: dict[str, tuple[Callable[[], object], Callable[[], object],
                           Callable[[], object], Callable[[], object], Callable[[], bool]]] = {
        "latency (toxic)": (
            lambda: inj.apply("latency", "node-100", {"latency_ms": LATENCY_MS}), inj.clear_all,
            lambda: toxi.add_toxic("node-100", "latency", name="raw",
                                   attributes={"latency": LATENCY_MS}),
            lambda: toxi.remove_toxic("node-100", "raw"), health_slow(via_proxy)),
        "blackhole (iptables)": (
            lambda: inj.apply("blackhole", "node-100"), inj.clear_all, raw_block, raw_unblock,
            health_fails(via_proxy)),
        "pause (docker)": (
            lambda: inj.apply("pause", "node-100"), inj.clear_all, container.pause,
            container.unpause, health_fails(direct)),
    }
    figures: dict[str, dict[str, list[float]]] = {}
    for name, (apply, clear, raw_apply, raw_clear, check) in cases.items():
        rows = figures.setdefault(name, {"call": [], "effect": [], "raw_call": []})
        for _ in range(repeat):  # library and raw alternate, so drift hits both alike
            call, effect = measure(apply, clear, check)
            rows["call"].append(call)
            rows["effect"].append(effect)
            rows["raw_call"].append(measure(raw_apply, raw_clear, check)[0])
    return figures


def main() -> int:
    from shakedown.machine import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-i", "--inventory", help="a testnet that is already up")
    args = parser.parse_args()
    print(describe())
    own = not args.inventory
    inventory = Path(args.inventory or tempfile.mkdtemp(prefix="sdbench-")) / (
        "" if args.inventory else "inventory.py")
    if own:
        data = {"testnet": "sdbench-faults", "port_base": free_port_base(3),
                "record_path": str(inventory.parent / "deployment.json")}
        inventory.write_text(f"docker_hosts = [('@local', {data!r})]\n")
        subprocess.run([sys.executable, "-m", "shakedown.cli", "up", "-i", str(inventory)],
                       cwd=REPO, check=True)
    try:
        figures = run(load_inventory(inventory)[0], args.repeat)
    finally:
        if own:
            subprocess.run([sys.executable, "-m", "shakedown.cli", "down", "-i",
                            str(inventory)], cwd=REPO, check=False)
    # call: the apply call returns; effect: the first probe that saw the fault was sent
    # (a probe in flight when the fault lands counts, so effect can precede the call's end).
    print(f"{'kind':22} {'call p50':>9} {'call max':>9} {'raw call p50':>13} {'ratio':>6} "
          f"{'effect p50':>11} {'effect max':>11}")
    for name, rows in figures.items():
        call, raw = statistics.median(rows["call"]), statistics.median(rows["raw_call"])
        print(f"{name:22} {call * 1000:7.1f}ms {max(rows['call']) * 1000:7.1f}ms "
              f"{raw * 1000:11.1f}ms {call / raw:6.1f} "
              f"{statistics.median(rows['effect']) * 1000:9.1f}ms "
              f"{max(rows['effect']) * 1000:9.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
