"""A Docker host on a VM: Debian's engine installed and running, the testnet's images carried over.

``docker_host(images)`` installs ``docker.io``, keeps the engine enabled and running, checks
that ``docker info`` answers (one line saying why when it does not), then carries every image
the host lacks: ``docker save`` on this machine, upload over SSH, ``docker load`` there. No
registry is needed. Each operation reads facts first, so a second run changes nothing.

    pyinfra INVENTORY deploy/docker_host.py
"""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, FunctionCommand, StringCommand, deploy, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import apt, systemd

from shakedown.errors import NotFoundError, UnreachableError

# apparmor and ca-certificates are docker.io's only recommends we want: the engine needs the
# first where the kernel enables AppArmor, pulls need the second; the rest (git, needrestart)
# are left out.
PACKAGES = ("docker.io", "apparmor", "ca-certificates")
UNIT = "docker.service"
APT_CACHE_S = 24 * 3600
REMOTE_TMP = "/var/tmp"  # image archives can be large; /tmp is often a small tmpfs

# Prints "up VERSION DRIVER CGROUP", or "down: STATE" then dockerd's error lines from the
# unit's last run (its invocation id picks out that run's lines only) and the storage driver
# daemon.json asks for, if any.
ENGINE_PROBE = r"""
if ! command -v docker >/dev/null; then echo "down: docker is not installed"
elif info=$(timeout 30 docker info --format '{{.ServerVersion}} {{.Driver}} {{.CgroupVersion}}' \
    2>&1); then echo "up $info"
else
  echo "down: docker.service is $(systemctl is-active docker.service)"
  run=$(systemctl show -p InvocationID --value docker.service)
  journalctl --no-pager -o cat -b _SYSTEMD_INVOCATION_ID="$run" 2>/dev/null \
    | grep -E 'level=(error|fatal)|failed to start daemon' | tail -n 20
  sed -n 's/.*"storage-driver" *: *"\([^"]*\)".*/configured storage-driver \1/p' \
    /etc/docker/daemon.json 2>/dev/null
fi
"""


class DockerEngine(FactBase):
    """``docker info`` on the host, read by ``read_engine``:
    ``{"answers": True, "version": "20.10.24", "driver": "vfs", "cgroup": "1"}`` or
    ``{"answers": False, "why": "failed to start daemon: ... (storage-driver=overlay2: ...)"}``.
    """

    def command(self) -> str:
        return ENGINE_PROBE

    def process(self, output: list[str]) -> dict[str, Any]:
        return read_engine(output)


class DockerImageId(FactBase):
    """The id of image ``ref`` on the host's engine, ``"sha256:3f2a..."``, or None."""

    def requires_command(self, ref: str) -> str:
        return "docker"

    def command(self, ref: str) -> str:
        return f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(ref)} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        ids = [line.strip() for line in output if line.strip().startswith("sha256:")]
        return ids[0] if ids else None


def read_engine(lines: list[str]) -> dict[str, Any]:
    """Parse ENGINE_PROBE's output; a down engine gets a one-line ``why``."""
    head = lines[0].strip() if lines else "down: no answer from the probe"
    if head.startswith("up "):
        version, driver, cgroup = [*head.split(), "?", "?", "?"][1:4]
        return {"answers": True, "version": version, "driver": driver, "cgroup": cgroup}
    return {"answers": False, "why": why_down(head.removeprefix("down: "), lines[1:])}


def why_down(state: str, log: list[str]) -> str:
    """One line: dockerd's fatal message, the last error before it and the storage driver
    daemon.json asks for; else the unit's state.

    ``why_down("docker.service is failed", [...])`` -> ``"failed to start daemon: error
    initializing graphdriver: driver not supported (last error: failed to mount overlay:
    invalid argument, storage-driver=overlay2; daemon.json: storage-driver overlay2)"``
    """
    configured = [line.split()[-1] for line in log if line.startswith("configured storage-driver")]
    fatal = [i for i, line in enumerate(log)
             if "level=fatal" in line or line.startswith("failed to start daemon")]
    if not fatal:
        return state
    errors = [line for line in log[:fatal[-1]] if "level=error" in line]
    notes = [f"last error: {_message(errors[-1])}"] if errors else []
    notes += [f"daemon.json: storage-driver {driver}" for driver in configured]
    said = _message(log[fatal[-1]])
    return f"{said} ({'; '.join(notes)})" if notes else said


def _message(line: str) -> str:
    """A logrus line's ``msg`` and its extra fields (``storage-driver=overlay2``); else the line."""
    found = re.search(r'msg="((?:[^"\\]|\\.)*)"(.*)$', line)
    if not found:
        return line.strip()
    fields = [f for f in found.group(2).split() if "=" in f]
    return ", ".join([found.group(1).replace('\\"', '"'), *fields])


@operation()
def engine_answers():  # type: ignore[no-untyped-def]
    """Check that ``docker info`` answers; when it does not, fail with one line saying why."""
    engine = host.get_fact(DockerEngine)
    if engine["answers"]:
        note = ("; vfs copies every layer in full (overlay2 needs /var/lib/docker on ext4/xfs)"
                if engine["driver"] == "vfs" else "")
        host.noop(f"docker {engine['version']} answers: storage driver {engine['driver']}, "
                  f"cgroup v{engine['cgroup']}{note}")
        return
    line = f"docker on {host.name} does not answer: {engine['why']}"
    yield StringCommand(f"echo {shlex.quote(line)} >&2; exit 1")


class ImageMissing(NotFoundError, OperationError):
    """An image to carry is not on this machine's engine (pyinfra prints this message)."""


def local_image_id(ref: str) -> str:
    """The id of ``ref`` on this machine's engine (the one ``DOCKER_HOST`` names)."""
    import docker.errors

    from shakedown.images import connect

    try:
        return str(connect().images.get(ref).id)
    except docker.errors.ImageNotFound as e:
        raise ImageMissing(f"image {ref}: not on this machine's engine; "
                           "build it with `python -m shakedown.images`") from e


def upload_image(state: Any, host: Any, ref: str, remote: str) -> None:
    """``docker save`` ``ref`` here into a temporary file and upload it to ``remote``."""
    from shakedown.images import connect

    with tempfile.TemporaryDirectory(prefix="shakedown-image-") as tmp:
        archive = Path(tmp) / "image.tar"
        with archive.open("wb") as f:
            for chunk in connect(timeout=600).api.get_image(ref):
                f.write(chunk)
        if not host.put_file(str(archive), remote):
            raise UnreachableError(f"{host.name}: upload of image {ref} to {remote} failed")


@operation()
def image(ref: str):  # type: ignore[no-untyped-def]
    """Carry image ``ref`` from this machine's engine unless the host has it with the same id."""
    wanted = local_image_id(ref)
    if host.get_fact(DockerImageId, ref=ref) == wanted:
        host.noop(f"image {ref}: on the host already")
        return
    remote = host.get_temp_filename(f"image-{wanted}", temp_directory=REMOTE_TMP)
    yield FunctionCommand(upload_image, (ref, remote), {})
    yield StringCommand(f"docker load -i {remote}; loaded=$?; rm -f {remote}; exit $loaded")


@deploy("docker engine")
def engine() -> None:
    apt.packages(name="docker.io installed", packages=list(PACKAGES), update=True,
                 cache_time=APT_CACHE_S, no_recommends=True)
    # A failed start is not fatal here: the check below says why in one line, which
    # systemctl's "see journalctl -xeu" does not.
    systemd.service(name="docker engine enabled and running", service=UNIT, running=True,
                    enabled=True, _ignore_errors=True)
    engine_answers(name="docker info answers")


@deploy("docker host")
def docker_host(images: Iterable[str] = ()) -> None:
    """The engine, then each of ``images`` carried from this machine.

    Example: ``docker_host(images=["shakedown/anvil:d9f6a7735efd"])``
    """
    engine()
    for ref in images:
        image(name=f"image {ref} carried", ref=ref)


def testnet_images(host: Any) -> list[str]:
    """The host data's ``carry_images`` when set, else the images its testnet runs (the
    inventory's ``images``, or those shakedown.images builds here when missing)."""
    given = host.data.get("carry_images")
    if given is not None:
        return list(given)
    from shakedown.deploy import testnet_of
    from shakedown.deploy.images import images_for

    found = images_for(testnet_of(host))
    return sorted({found.node, found.anvil, found.postgres, found.toxiproxy})
