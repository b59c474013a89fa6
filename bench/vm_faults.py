"""Host faults over SSH on real VMs: apply-to-effect, library vs the raw command; lane time.

Boots two Debian VMs under qemu (``shakedown.vm.qemu``). This machine pings vm1 every 10 ms
(ICMP from a raw socket); a fault on vm1's egress toward this machine shows in those pings: a reply
100 ms late (netem delay) or no reply (iptables partition). Apply-to-effect is the time from
the call to the send time of the first probe that shows it. The floor is the same effect
from the bare command (one ``tc`` or ``iptables`` exec on an open SSH connection), same run.

    .venv/bin/python bench/vm_faults.py [--repeat 5] [--lane]

``--lane`` also times the real-VM test lane (``pytest -m vm tests/vm``) end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shakedown.faults import Injector
from shakedown.faults.ssh import Session
from shakedown.machine import describe
from shakedown.vm.qemu import VMLab

REPO = Path(__file__).resolve().parents[1]
INTERVAL = 0.01


class Pinger:
    """ICMP echo to ``address`` every 10 ms from this machine (a raw socket; root), each
    probe's send time and round trip kept; a probe unanswered after 1 s counts as lost."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.settimeout(0.2)
        self.ident = os.getpid() & 0xFFFF
        self.sent: dict[int, float] = {}
        self.rtt: dict[int, float] = {}  # seq -> ms
        self.running = True
        threading.Thread(target=self._send, daemon=True).start()
        threading.Thread(target=self._receive, daemon=True).start()

    def _send(self) -> None:
        seq, tick = 0, time.monotonic()
        while self.running:
            seq = (seq + 1) & 0xFFFF
            header = struct.pack("!BBHHH", 8, 0, 0, self.ident, seq)
            body = struct.pack("!d", 0.0)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + body), self.ident,
                                 seq) + body
            self.sent[seq] = time.time()
            self.sock.sendto(packet, (self.address, 0))
            tick += INTERVAL
            time.sleep(max(0.0, tick - time.monotonic()))

    def _receive(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(2048)
            except OSError:
                continue
            now = time.time()
            icmp = data[(data[0] & 0x0F) * 4:]
            kind, _, _, ident, seq = struct.unpack("!BBHHH", icmp[:8])
            if kind == 0 and ident == self.ident and seq in self.sent:
                self.rtt[seq] = (now - self.sent[seq]) * 1000

    def _fate(self, seq: int) -> tuple[bool, float | None]:
        """(known yet, rtt ms or None for lost)."""
        if seq in self.rtt:
            return True, self.rtt[seq]
        return time.time() - self.sent[seq] > 1.0, None

    def first_after(self, started: float, shows: Callable[[float | None], bool],
                    limit: float = 30.0) -> float:
        """Seconds from ``started`` (wall clock) to the send time of the first probe sent
        after it that shows the effect."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for seq, sent in sorted(list(self.sent.items()), key=lambda kv: kv[1]):
                known, rtt = self._fate(seq) if sent >= started else (False, None)
                if known and shows(rtt):
                    return sent - started
            time.sleep(0.05)
        raise RuntimeError("effect not seen within the limit")

    def settle(self, healthy: Callable[[float | None], bool], limit: float = 30.0) -> None:
        """Wait until five probes in a row, all known, are healthy again."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            now = time.time()
            recent = [self._fate(seq) for seq, sent in sorted(
                list(self.sent.items()), key=lambda kv: kv[1]) if now - sent > 1.0][-5:]
            if len(recent) == 5 and all(known and healthy(rtt) for known, rtt in recent):
                return
            time.sleep(0.05)
        raise RuntimeError("the link did not recover")

    def stop(self) -> None:
        self.running = False
        time.sleep(0.3)
        self.sock.close()


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def delayed(rtt: float | None) -> bool:
    return rtt is not None and rtt >= 80


def lost(rtt: float | None) -> bool:
    return rtt is None


def fine(rtt: float | None) -> bool:
    return rtt is not None and rtt < 40


def measure(pinger: Pinger, act: Callable[[], object], undo: Callable[[], object],
            shows: Callable[[float | None], bool]) -> tuple[float, float]:
    """(apply-to-effect, call duration) of one fault, healed afterwards."""
    pinger.settle(fine)
    started, t0 = time.time(), time.monotonic()
    act()
    call = time.monotonic() - t0
    effect = pinger.first_after(started, shows)
    undo()
    return effect, call


def row(name: str, samples: list[tuple[float, float]], floor: float | None) -> str:
    effects = [e * 1000 for e, _ in samples]
    calls = [c * 1000 for _, c in samples]
    p50 = statistics.median(effects)
    ratio = f"{p50 / (floor * 1000):.1f}" if floor else "-"
    return (f"| {name} | {p50:.0f} / {max(effects):.0f} ms | {statistics.median(calls):.0f} ms"
            f" | {ratio} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lane", action="store_true", help="also time pytest -m vm tests/vm")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    started = time.monotonic()
    with VMLab(count=2) as lab, tempfile.TemporaryDirectory() as tmp:
        print(f"2 VMs booted (image cached) in {time.monotonic() - started:.1f} s")
        vm1 = lab.vms[0]
        host_ip = vm1.address.rsplit(".", 1)[0] + ".1"
        inj = Injector.on_hosts("sdvmbench", [vm1.ssh], Path(tmp))
        raw = Session(vm1.ssh)
        raw.check("true")
        inj.backend.session("vm1").check("true")  # both connections open before timing
        rtts = []
        for _ in range(5):
            t0 = time.monotonic()
            raw.check("true")
            rtts.append(time.monotonic() - t0)
        print(f"SSH exec round trip on an open connection: {statistics.median(rtts) * 1000:.0f}"
              " ms (median of 5)")
        pinger = Pinger(vm1.address)
        results: dict[str, list[tuple[float, float]]] = {}
        netem = {"delay_ms": 100}
        part = {"peers": host_ip}
        cases: list[tuple[str, Callable[[], object], Callable[[], object],
                          Callable[[float | None], bool]]] = [
            ("netem delay, raw tc", lambda: raw.check(
                "tc qdisc add dev eth0 root handle 5d: netem delay 100ms"),
             lambda: raw.check("tc qdisc del dev eth0 root"), delayed),
            ("netem delay, library (whole NIC)", lambda: inj.apply("netem", "vm1", netem),
             lambda: inj.clear_all(), delayed),
            ("netem delay, library (toward one address)", lambda: inj.apply(
                "netem", "vm1", {**netem, "dst": host_ip}), lambda: inj.clear_all(), delayed),
            ("partition, raw iptables", lambda: raw.check(
                f"iptables -w 5 -I INPUT -s {host_ip} -p icmp -j DROP"),
             lambda: raw.check(f"iptables -w 5 -D INPUT -s {host_ip} -p icmp -j DROP"), lost),
            ("partition, library", lambda: inj.apply("partition", "vm1", part),
             lambda: inj.clear_all(), lost),
        ]
        for name, act, undo, shows in cases:
            results[name] = [measure(pinger, act, undo, shows) for _ in range(args.repeat)]
        pinger.stop()
        inj.close()
        raw.close()
    print("\n| fault | apply-to-effect p50 / max | call p50 | ratio to raw |")
    print("|---|---|---|---|")
    floors = {"netem": statistics.median(e for e, _ in results["netem delay, raw tc"]),
              "partition": statistics.median(e for e, _ in results["partition, raw iptables"])}
    for name, samples in results.items():
        floor = None if "raw" in name else floors[name.split()[0].rstrip(",")]
        print(row(name, samples, floor))
    print(f"\nbench wall time (boot + {args.repeat} x 5 faults + teardown): "
          f"{time.monotonic() - started:.1f} s")
    if args.lane:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "vm", "tests/vm", "-q",
                               "-p", "no:cacheprovider"], cwd=REPO, capture_output=True,
                              text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or ["?"]
        print(f"real-VM lane (pytest -m vm tests/vm): {time.monotonic() - t0:.1f} s, {tail[0]}")
        record = REPO / ".shakedown" / "bench" / "vm_lane.json"
        if record.is_file():
            print(json.dumps(json.loads(record.read_text())["measured"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
