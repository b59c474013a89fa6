"""deploy/docker_host.py on a VM-like container (systemd + sshd) reached over SSH by pyinfra.

The first run installs Debian's engine and starts it (``docker info`` answers over SSH); a
second run changes nothing; an image is carried from this machine's engine (the host lists it
with the same id) and a second carry is a no-op; an engine that cannot start is named in one
line. The engine shares this machine's kernel: with the container's overlay root, dockerd
falls back to the vfs storage driver. Wall times go to .shakedown/bench/docker_host.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from shakedown.faults.ssh import Session
from shakedown.vm.sshhosts import SSHHost, SSHHosts
from shakedown.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "docker_host.py"
BENCH = REPO / ".shakedown" / "bench" / "docker_host.json"
INFO = "docker info --format '{{.ServerVersion}} {{.Driver}}'"


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    seconds: float

    def changed(self) -> list[str]:
        """The operations that ran commands (pyinfra says "Success"; "No changes" otherwise)."""
        ops = self.out.split("--> Starting operation: ")[1:]
        return [op.splitlines()[0].strip() for op in ops if "] Success" in op]


def deploy(inventory: Path) -> Run:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pyinfra", "-y", "-v", str(inventory),
                           str(SCRIPT)], capture_output=True, text=True, timeout=900, cwd=REPO)
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


def inventory(vm: SSHHost, path: Path, carry: list[str]) -> Path:
    data = {"ssh_user": "root", "ssh_key": vm.ssh.key_file,
            "ssh_known_hosts_file": vm.ssh.known_hosts, "ssh_strict_host_key_checking": "yes",
            "carry_images": carry}
    path.write_text(f"hosts = {[(vm.address, data)]!r}\n")
    return path


@pytest.fixture(scope="module")
def timings() -> Iterator[dict[str, object]]:
    """What this module measured; written to .shakedown/bench/ at its end."""
    measured: dict[str, object] = {}
    yield measured
    BENCH.parent.mkdir(parents=True, exist_ok=True)
    BENCH.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **measured},
                                indent=1) + "\n")


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHost]:
    with SSHHosts(count=1, run_dir=tmp_path_factory.mktemp("sdvm-docker")) as hosts:
        yield hosts.hosts[0]


@pytest.fixture(scope="module")
def session(vm: SSHHost) -> Iterator[Session]:
    with Session(vm.ssh) as s:
        yield s


@pytest.fixture(scope="module")
def engine_inventory(vm: SSHHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return inventory(vm, tmp_path_factory.mktemp("inv") / "engine.py", carry=[])


@pytest.fixture(scope="module")
def first_run(engine_inventory: Path, timings: dict[str, object]) -> Run:
    run = deploy(engine_inventory)
    timings["install_s"] = round(run.seconds, 1)
    return run


def test_first_run_installs_and_starts_the_engine(first_run: Run, session: Session,
                                                  timings: dict[str, object]) -> None:
    assert first_run.rc == 0, first_run.out[-3000:]
    assert "docker host | docker engine | docker.io installed" in first_run.changed()
    info = session.run(INFO)
    assert info.rc == 0, f"docker info over SSH: {info.last_error()}"
    timings["engine"] = info.out.strip()
    assert session.check("systemctl is-enabled docker.service").strip() == "enabled"


def test_second_run_changes_nothing(first_run: Run, engine_inventory: Path,
                                    timings: dict[str, object]) -> None:
    again = deploy(engine_inventory)
    timings["second_run_s"] = round(again.seconds, 1)
    assert again.rc == 0, again.out[-3000:]
    assert again.changed() == [], f"a second run changed {again.changed()}"
    assert "noop: docker " in again.out and " answers: storage driver " in again.out


def test_an_image_is_carried_once(first_run: Run, vm: SSHHost, session: Session,
                                  images: dict[str, str], docker_client: docker.DockerClient,
                                  tmp_path: Path, timings: dict[str, object]) -> None:
    ref = images["anvil"]
    local = docker_client.images.get(ref)
    inv = inventory(vm, tmp_path / "carry.py", carry=[ref])
    carried = deploy(inv)
    assert carried.rc == 0, carried.out[-3000:]
    assert carried.changed() == [f"docker host | image {ref} carried"], carried.changed()
    on_host = session.run(f"docker image inspect --format '{{{{.Id}}}}' {ref}")
    assert on_host.out.strip() == local.id, f"{vm.name}: {ref} is {on_host.out or on_host.err}"
    left = session.run("ls /var/tmp").out.split()
    assert not [f for f in left if f.startswith("pyinfra-")], f"archives left behind: {left}"
    again = deploy(inv)
    assert again.rc == 0 and again.changed() == [], f"a second carry changed {again.changed()}"
    timings.update(carry_ref=ref, carry_mb=round(local.attrs["Size"] / 1e6),
                   carry_s=round(carried.seconds, 1), second_carry_s=round(again.seconds, 1))


def test_an_engine_that_cannot_start_is_named_in_one_line(first_run: Run, session: Session,
                                                         engine_inventory: Path) -> None:
    # btrfs needs /var/lib/docker on btrfs: dockerd refuses to start with it here.
    session.run("echo '{\"storage-driver\": \"btrfs\"}' > /etc/docker/daemon.json; "
                "systemctl restart docker.service")
    try:
        broken = deploy(engine_inventory)
        assert broken.rc != 0, "the deploy passed with an engine that cannot start"
        said = [line for line in broken.out.splitlines() if "does not answer" in line]
        assert len(said) == 1, broken.out[-3000:]
        assert "graphdriver" in said[0] and "storage-driver btrfs" in said[0], said[0]
    finally:
        session.check("rm -f /etc/docker/daemon.json; systemctl reset-failed docker.service; "
                      "systemctl start docker.service")
        wait_for(lambda: session.run(INFO).rc, lambda rc: rc == 0, timeout=60,
                 what="docker info answering again after the fix")
