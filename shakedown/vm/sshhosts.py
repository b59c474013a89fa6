"""VM-like containers: systemd as PID 1 and sshd, each with its own address, for the fast lane.

They share this machine's kernel (no netem here), but to pyinfra and to the host-fault
injector they are SSH hosts like small VMs: apt, files, systemd units, iptables, tc. The image
is a debootstrap rootfs (cached as a tarball, named by its recipe's hash) imported with
``docker import``; no registry. Host keys are made at first boot and read with ``docker exec``
into a known_hosts file, so SSH checks host keys strictly. Each host runs ``sdvm-app``: a tiny
HTTP service on port 8080 that answers with its own clock, a target for process and clock
faults.

    with SSHHosts(count=3) as hosts:
        for h in hosts.hosts:
            print(h.name, h.address)
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import docker
import docker.errors
from docker.types import Mount

from shakedown.errors import ConfigError, ShakedownError
from shakedown.faults.ssh import Session, SSHTarget
from shakedown.vm.inventory import write_inventory
from shakedown.waiting import GiveUp, wait_for

PREFIX = "sdvm"
LABEL = "shakedown.sdvm"
REPOSITORY = "shakedown/sdvm-host"
CACHE = Path(os.environ.get("SHAKEDOWN_VM_CACHE_ROOT", Path.home() / ".cache/shakedown")) / \
    "sshhosts"
MIRROR = os.environ.get("SHAKEDOWN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What a fresh Debian VM gets from the systemd runtime's deploy (postgresql, python3-venv) is
# baked in, so the fast lane's deploy finds it installed, as on a VM provisioned before.
PACKAGES = ("systemd-sysv", "openssh-server", "iproute2", "iptables", "conntrack",
            "iputils-ping", "python3", "python3-venv", "procps", "libfaketime", "postgresql")
RUN_FLAGS = dict(cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=["seccomp=unconfined"],
                 tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
                 volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
                 # A volume of its own, so a Docker engine inside (deploy/docker_host.py) gets
                 # overlay2 rather than vfs; removed with the host.
                 mounts=[Mount("/var/lib/docker", None, type="volume")],
                 cgroupns="host", environment={"container": "docker"})
APP = '''#!/usr/bin/python3
"""sdvm-app: answers every GET with this process's clock (time.time()), for fault tests."""
import http.server
import time


class Clock(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = repr(time.time()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Clock).serve_forever()
'''
UNITS = {
    "sdvm-app.service": """[Unit]
Description=shakedown test app: its clock over HTTP on 8080
[Service]
ExecStart=/usr/local/bin/sdvm-app
[Install]
WantedBy=multi-user.target
""",
    "sdvm-hostkey.service": """[Unit]
Description=shakedown test host: a fresh SSH host key
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
""",
}
SSHD = "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\n" \
    "MaxSessions 50\n"
MASKED = ("getty@tty1.service", "console-getty.service", "e2scrub_reap.service",
          "apt-daily.timer", "apt-daily-upgrade.timer", "systemd-timesyncd.service",
          "postgresql.service")  # Debian's own cluster: the testnet runs its own


def key_file() -> Path:
    """The root SSH key of the test hosts (made once, kept in the cache)."""
    key = CACHE / "id_ed25519"
    if not key.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shakedown-sdvm", "-f",
              str(key)], "ssh-keygen")
    return key


def recipe_hash() -> str:
    text = "\0".join([APP, *UNITS.values(), SSHD, *MASKED, MIRROR, *PACKAGES,
                      (key_file().with_suffix(".pub")).read_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_image(client: docker.DockerClient) -> str:
    """The image reference, built when missing: debootstrap (about a minute, cached) + import."""
    digest = recipe_hash()
    ref = f"{REPOSITORY}:{digest}"
    try:
        client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    tarball = CACHE / f"rootfs-{digest}.tar"
    if not tarball.is_file():
        _build_rootfs(tarball)
    try:
        client.api.import_image(src=str(tarball), repository=REPOSITORY, tag=digest,
                                changes=[f"LABEL {LABEL}=image", 'CMD ["/sbin/init"]'])
    except docker.errors.APIError as e:
        raise ShakedownError(f"sshhosts: docker import of {tarball} failed: {e}") from e
    return ref


def _build_rootfs(tarball: Path) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise ConfigError("the SSH test hosts need debootstrap and root; run scripts/setup")
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
              "bookworm", str(root), MIRROR], "debootstrap")
        ssh = root / "root/.ssh"
        ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy(key_file().with_suffix(".pub"), ssh / "authorized_keys")
        (ssh / "authorized_keys").chmod(0o600)
        for old in (root / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        (root / "etc/ssh/sshd_config.d/sdvm.conf").write_text(SSHD)
        app = root / "usr/local/bin/sdvm-app"
        app.write_text(APP)
        app.chmod(0o755)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        for name, text in UNITS.items():
            (root / "etc/systemd/system" / name).write_text(text)
            (wants / name).symlink_to(f"/etc/systemd/system/{name}")
        for unit in MASKED:
            (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
        for name in ("etc/resolv.conf", "etc/hostname"):  # docker provides these
            (root / name).unlink(missing_ok=True)
        partial = Path(tmp) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], "tar")
        partial.replace(tarball)
    for old in CACHE.glob("rootfs-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [str(proc.returncode)]
        raise ShakedownError(f"sshhosts: {what} failed: {tail[0]}")


@dataclass(frozen=True)
class SSHHost:
    name: str
    address: str
    container: str
    ssh: SSHTarget


class SSHHosts:
    """``count`` VM-like containers on a network of their own; always torn down."""

    def __init__(self, count: int = 3, run_dir: Path | None = None) -> None:
        self.count = count
        self.run_id = secrets.token_hex(3)
        self._own_dir = run_dir is None  # made here: removed at teardown
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
        self.network = f"{PREFIX}-{self.run_id}"
        self.hosts: list[SSHHost] = []
        self.gateway = ""
        self._stack = ExitStack()

    def __enter__(self) -> SSHHosts:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> list[SSHHost]:
        if self._own_dir:
            self._stack.callback(shutil.rmtree, self.run_dir, ignore_errors=True)
        client = docker.from_env(timeout=120)
        reap(client)
        image = ensure_image(client)
        labels = {LABEL: self.run_id, f"{LABEL}.pid": str(os.getpid())}
        net = client.networks.create(self.network, driver="bridge", labels=labels)
        self._stack.callback(_quietly, net.remove)
        net.reload()
        self.gateway = net.attrs["IPAM"]["Config"][0]["Gateway"]
        known_hosts = self.run_dir / "known_hosts"
        known_hosts.write_text("")
        containers = []
        for i in range(1, self.count + 1):
            c = client.containers.run(image, name=f"{self.network}-h{i}", hostname=f"h{i}",
                                      network=self.network, labels=labels, detach=True,
                                      **RUN_FLAGS)  # type: ignore[arg-type]
            self._stack.callback(_quietly, c.remove, force=True, v=True)
            containers.append(c)
        for i, c in enumerate(containers, 1):
            c.reload()
            address = c.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
            key = wait_for(partial(_host_key, c), bool, timeout=60, interval=0.2,
                           what=f"{c.name}: SSH host key")
            with open(known_hosts, "a") as f:
                f.write(f"{address} {key}\n")
            target = SSHTarget(f"h{i}", address, key_file=str(key_file()),
                               known_hosts=str(known_hosts))
            wait_for(partial(_ssh_ok, target), bool, timeout=60, interval=0.2,
                     what=f"{c.name}: SSH at {address}")
            self.hosts.append(SSHHost(f"h{i}", address, c.name, target))
        return self.hosts

    def stop(self) -> None:
        self._stack.close()

    def write_inventory(self, path: Path, group: dict[str, object],
                        per_host: list[dict[str, object]] | None = None) -> Path:
        """A pyinfra inventory of these hosts (``shakedown.vm.inventory``)."""
        return write_inventory(path, [h.ssh for h in self.hosts], group, per_host)


def _host_key(container: docker.models.containers.Container) -> str:
    container.reload()
    if container.status not in ("created", "running"):
        raise GiveUp(f"{container.name} is {container.status}: "
                     f"{container.logs(tail=5).decode(errors='replace')}")
    result = container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    return " ".join(result.output.decode().split()[:2]) if result.exit_code == 0 else ""


def _ssh_ok(target: SSHTarget) -> bool:
    with Session(target) as s:
        return s.check("systemctl is-active ssh").strip() == "active"


def _quietly(fn: object, *args: object, **kwargs: object) -> None:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:  # 409: its removal is already under way
        if e.status_code != 409:
            raise


def reap(client: docker.DockerClient, run_id: str | None = None) -> None:
    """Remove containers and networks of runs whose owner is gone (or of ``run_id``)."""
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if run_id is None and c.status == "running" and _owner_alive(c):
            continue
        if run_id is None or c.labels.get(LABEL) == run_id:
            _quietly(c.remove, force=True, v=True)
    for n in client.networks.list(filters={"label": LABEL}):
        if run_id is None or n.attrs.get("Labels", {}).get(LABEL) == run_id:
            n.reload()
            if not n.attrs.get("Containers"):
                _quietly(n.remove)


def _owner_alive(container: docker.models.containers.Container) -> bool:
    pid = container.labels.get(f"{LABEL}.pid", "")
    return pid.isdigit() and Path(f"/proc/{pid}").exists()
