"""Debian VMs under qemu (TCG; no KVM needed) on a bridge of our own, reached over SSH.

Each VM boots the image of ``scripts/vm-image`` through its own qcow2 overlay, with a tap on
the bridge ``sdvm<N>`` (address ``10.213.<N>.1/24``) and the static address
``10.213.<N>.<10+i>``. Its SSH host key is read from its serial console, so host keys are
checked strictly. Docker's FORWARD policy drops bridged traffic, so one ACCEPT rule for our
bridge goes into ``DOCKER-USER`` and comes out at teardown. Everything is removed on exit, also
when start fails half-way; a run that died is reaped by the next one.

    with VMLab(count=2) as lab:
        vm1, vm2 = lab.vms
        print(Session(vm1.ssh).check("uname -r"))
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from shakedown.errors import ConfigError, ShakedownError
from shakedown.faults.ssh import Session, SSHTarget
from shakedown.vm.inventory import write_inventory
from shakedown.waiting import GiveUp, wait_for

PREFIX = "sdvm"
STATE_DIR = Path("/run/shakedown-vm")
IMAGE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vm-image"
HOSTKEY_MARK = "SDVM-HOSTKEY "


@dataclass(frozen=True)
class VMImage:
    disk: Path
    kernel: Path
    initrd: Path
    key: Path

    @classmethod
    def ensure(cls) -> VMImage:
        """Build the image once (``scripts/vm-image``, about a minute); cached afterwards."""
        if not IMAGE_SCRIPT.is_file():
            raise ConfigError(f"{IMAGE_SCRIPT} is missing: run from a shakedown checkout")
        proc = subprocess.run([str(IMAGE_SCRIPT)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise ShakedownError(f"vm-image failed: {tail[0]}")
        manifest = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
        return cls(*(Path(manifest[k]) for k in ("disk", "kernel", "initrd", "key")))


@dataclass(frozen=True)
class VM:
    name: str
    address: str
    tap: str
    console: Path
    ssh: SSHTarget


def _sh(*argv: str, ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode not in ok:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise ShakedownError(f"{' '.join(argv)}: {err[-1] if err else proc.returncode}")
    return proc.stdout


def _die_with_parent() -> None:
    """In the qemu child: SIGKILL when the process that started it dies (no orphans)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _accept_rule(bridge: str) -> list[str]:
    return ["DOCKER-USER", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
            "-m", "comment", "--comment", bridge]


def _free_index() -> int:
    """The first N with no bridge sdvmN and no address in 10.213.N.0/24 on this machine."""
    addrs = _sh("ip", "-o", "-4", "addr", "show")
    links = _sh("ip", "-o", "link", "show")
    for n in range(256):
        if f" 10.213.{n}." not in addrs and f": {PREFIX}{n}:" not in links:
            return n
    raise ShakedownError("no free 10.213.N.0/24 network for the VMs")


class VMLab:
    """``count`` VMs on a fresh bridge; a context manager that always tears down."""

    def __init__(self, count: int = 2, memory_mb: int = 640, run_dir: Path | None = None,
                 boot_timeout: float = 420.0) -> None:
        if os.geteuid() != 0:
            raise ConfigError("the qemu VMs need root (bridge, taps, iptables)")
        for tool in ("qemu-system-x86_64", "qemu-img"):
            if shutil.which(tool) is None:
                raise ConfigError(f"{tool} is missing: apt-get install qemu-system-x86 "
                                  "qemu-utils (scripts/setup)")
        self.count, self.memory_mb, self.boot_timeout = count, memory_mb, boot_timeout
        self._own_dir = run_dir is None  # made here: removed at teardown (overlays, consoles)
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
        self.vms: list[VM] = []
        self.bridge = ""
        self.boot_s = 0.0
        self._stack = ExitStack()
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> VMLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> list[VM]:
        if self._own_dir:
            self._stack.callback(shutil.rmtree, self.run_dir, ignore_errors=True)
        reap_stale()
        image = VMImage.ensure()
        n = _free_index()
        self.bridge = bridge = f"{PREFIX}{n}"
        gateway = f"10.213.{n}.1"
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = STATE_DIR / f"{bridge}.json"
        self._stack.callback(state.unlink, missing_ok=True)
        _sh("ip", "link", "add", bridge, "type", "bridge")
        self._stack.callback(_sh, "ip", "link", "del", bridge, ok=(0, 1))
        _sh("ip", "addr", "add", f"{gateway}/24", "dev", bridge)
        _sh("ip", "link", "set", bridge, "up")
        if subprocess.run(["iptables", "-w", "5", "-S", "DOCKER-USER"],
                          capture_output=True).returncode == 0:
            _sh("iptables", "-w", "5", "-I", *_accept_rule(bridge))
            self._stack.callback(_sh, "iptables", "-w", "5", "-D", *_accept_rule(bridge),
                                 ok=(0, 1))
        known_hosts = self.run_dir / "known_hosts"
        known_hosts.write_text("")
        started = time.monotonic()
        for i in range(1, self.count + 1):
            vm = self._boot(image, n, i, known_hosts)
            self.vms.append(vm)
            state.write_text(json.dumps({"bridge": bridge, "taps": [v.tap for v in self.vms],
                                         "pids": [p.pid for p in self._procs]}))
        for vm, proc in zip(self.vms, self._procs, strict=True):
            self._wait_ready(vm, proc, known_hosts)
        self.boot_s = time.monotonic() - started
        return self.vms

    def write_inventory(self, path: Path, group: dict[str, object],
                        per_host: list[dict[str, object]] | None = None) -> Path:
        """A pyinfra inventory of these VMs (``shakedown.vm.inventory``)."""
        return write_inventory(path, [vm.ssh for vm in self.vms], group, per_host)

    def _boot(self, image: VMImage, n: int, i: int, known_hosts: Path) -> VM:
        name, tap, address = f"vm{i}", f"{PREFIX}{n}t{i}", f"10.213.{n}.{10 + i}"
        _sh("ip", "tuntap", "add", "dev", tap, "mode", "tap")
        self._stack.callback(_sh, "ip", "link", "del", tap, ok=(0, 1))
        _sh("ip", "link", "set", tap, "master", self.bridge, "up")
        overlay = self.run_dir / f"{name}.qcow2"
        _sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.disk),
            str(overlay))
        console = self.run_dir / f"{name}.console"
        append = (f"root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet panic=-1 "
                  f"sdvm.ip={address}/24 sdvm.gw=10.213.{n}.1 sdvm.hostname={name}")
        cmd = ["qemu-system-x86_64", "-name", f"{self.bridge}-{name}", "-machine", "pc",
               "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max", "-smp", "1",
               "-m", str(self.memory_mb), "-nodefaults", "-no-user-config", "-display", "none",
               "-serial", f"file:{console}", "-kernel", str(image.kernel),
               "-initrd", str(image.initrd), "-append", append,
               "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
               "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=net0,mac=52:54:00:d3:{n:02x}:{i:02x}",
               "-device", "virtio-rng-pci", "-no-reboot"]
        log = open(self.run_dir / f"{name}.qemu.log", "wb")
        self._stack.callback(log.close)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=_die_with_parent)
        self._procs.append(proc)
        self._stack.callback(_terminate, proc)
        target = SSHTarget(name, address, key_file=str(image.key), known_hosts=str(known_hosts),
                           connect_timeout=60.0)
        return VM(name, address, tap, console, target)

    def _wait_ready(self, vm: VM, proc: subprocess.Popen[bytes], known_hosts: Path) -> None:
        """The host key on the console (then known_hosts), then an SSH command that runs."""
        def hostkey() -> str:
            if proc.poll() is not None:
                raise GiveUp(f"{vm.name}: qemu exited ({proc.returncode}); see "
                             f"{self.run_dir / (vm.name + '.qemu.log')}")
            text = vm.console.read_text(errors="replace") if vm.console.exists() else ""
            for line in text.splitlines():
                if line.startswith(HOSTKEY_MARK):
                    return " ".join(line[len(HOSTKEY_MARK):].split()[:2])
            return ""

        key = wait_for(hostkey, bool, timeout=self.boot_timeout, interval=0.5,
                       what=f"{vm.name}: SSH host key on the serial console {vm.console}")
        with open(known_hosts, "a") as f:
            f.write(f"{vm.address} {key}\n")

        def ssh_ok() -> str:
            hostkey()  # gives up when qemu died
            with Session(vm.ssh) as s:
                return s.check("echo ready").strip()

        wait_for(ssh_ok, lambda out: out == "ready", timeout=self.boot_timeout, interval=1.0,
                 what=f"{vm.name}: SSH at {vm.address}")

    def stop(self) -> None:
        """Tear down in reverse: qemu processes, taps, the iptables rule, the bridge."""
        self._stack.close()
        self._procs.clear()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def reap_stale() -> list[str]:
    """Remove what dead runs left (bridges, taps, DOCKER-USER rules); the names removed."""
    removed = []
    for state in STATE_DIR.glob(f"{PREFIX}*.json") if STATE_DIR.is_dir() else []:
        try:
            info = json.loads(state.read_text())
        except ValueError:
            info = {"bridge": state.stem, "taps": [], "pids": []}
        if any(_alive(pid) for pid in info.get("pids", [])):
            continue
        bridge = info["bridge"]
        for tap in info.get("taps", []):
            subprocess.run(["ip", "link", "del", tap], capture_output=True)
        subprocess.run(["iptables", "-w", "5", "-D", *_accept_rule(bridge)],
                       capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        state.unlink(missing_ok=True)
        removed.append(bridge)
    return removed


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"qemu-system" in cmdline
