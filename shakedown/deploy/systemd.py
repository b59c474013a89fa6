"""The systemd runtime: each service of a testnet as one unit on a VM, reached over SSH.

The twin of ``shakedown.deploy.docker``: a ``UnitSpec`` is what decides a unit, its hash is
written into the unit file (``# shakedown.spec=...``), and the ``unit`` operation rewrites and
restarts only a unit whose hash differs. Names carry the testnet (``sd-node-100.service``,
``/opt/shakedown/sd``, ``/etc/shakedown/sd``, ``/var/lib/shakedown/testnets/sd``), so testnets
share hosts and teardown removes exactly its own. Secrets live in an environment file only root
reads; the unit names it. Services run as a transient DynamicUser, the database as postgres.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FileContents
from pyinfra.operations import apt

from shakedown.deploy.docker import spec_table
from shakedown.deploy.wheelhouse import Wheelhouse

UNIT_DIR = "/etc/systemd/system"
# The newest PostgreSQL server Debian/Ubuntu installed, found when the unit starts.
PG_BIN = "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"


@dataclass(frozen=True)
class Paths:
    """Where one testnet lives on a host."""

    testnet: str

    @property
    def root(self) -> str:
        return f"/opt/shakedown/{self.testnet}"

    @property
    def venv(self) -> str:
        return f"{self.root}/venv"

    @property
    def bin(self) -> str:
        return f"{self.root}/bin"

    @property
    def config(self) -> str:
        return f"/etc/shakedown/{self.testnet}"

    @property
    def data(self) -> str:
        return f"/var/lib/shakedown/testnets/{self.testnet}"


@dataclass(frozen=True)
class UnitSpec:
    """Everything that decides a unit; its hash is the drift mark in the unit file."""

    testnet: str
    service: str
    exec_start: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[tuple[str, str], ...] = ()
    user: str = ""  # empty: a DynamicUser of its own

    @property
    def name(self) -> str:
        return f"{self.testnet}-{self.service}.service"

    @property
    def env_file(self) -> str:
        return f"{Paths(self.testnet).config}/{self.service}.env"

    def digest(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def unit_text(self) -> str:
        user = f"User={self.user}" if self.user else "DynamicUser=yes"
        return (f"# shakedown.spec={self.digest()}\n"
                "[Unit]\n"
                f"Description=shakedown testnet {self.testnet}: {self.service}\n"
                "After=network-online.target\n"
                "[Service]\n"
                f"EnvironmentFile={self.env_file}\n"
                f"ExecStart={self.command_line()}\n"
                f"{user}\n"
                # A crash restarts, as on any staging VM; a stop (a fault) stays stopped.
                "Restart=on-failure\nRestartSec=1\nLimitNOFILE=65536\n"
                "[Install]\nWantedBy=multi-user.target\n")

    def command_line(self) -> str:
        """ExecStart's words; ``$`` doubled, or systemd would expand it as a variable."""
        return " ".join(_systemd_quote(a) for a in self.exec_start).replace("$", "$$")

    def env_text(self) -> str:
        return "".join(f"{k}={_systemd_quote(v)}\n" for k, v in (*self.env, *self.secret_env))


def _systemd_quote(value: str) -> str:
    """Quote for a unit's command line or an environment file (both split like a shell)."""
    if value and all(c.isalnum() or c in "-_./:=@,+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TestnetUnits(FactBase):
    """Units of one testnet: ``{"sd-node-100.service": {"spec": "ab12...", "running": True}}``."""

    def command(self, testnet: str) -> str:
        return (f"for f in {UNIT_DIR}/{testnet}-*.service; do [ -e \"$f\" ] || continue; "
                "n=$(basename \"$f\"); s=$(sed -n 's/^# shakedown.spec=//p' \"$f\"); "
                "printf '%s\\t%s\\t%s\\n' \"$n\" \"$s\" \"$(systemctl is-active \"$n\")\"; done")

    @staticmethod
    def default() -> dict[str, dict[str, Any]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        return spec_table(output, running="active")


class HostPython(FactBase):
    """The host's ``python3`` as ``3.11``: the wheelhouse is built for it."""

    def command(self) -> str:
        return "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'"

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else ""


class TestnetLeftovers(FactBase):
    """Anything of one testnet on a host: unit files and its directories."""

    def command(self, testnet: str) -> str:
        p = Paths(testnet)
        return (f"ls -d {UNIT_DIR}/{testnet}-*.service {p.root} {p.config} {p.data} "
                "2>/dev/null || true")

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


@operation()
def unit(spec: UnitSpec | Callable[[], UnitSpec]):  # type: ignore[no-untyped-def]
    """Install and run ``spec``; rewrite and restart it only when its hash differs.

    ``spec`` may be a function, called when the operation runs (a node's unit needs the
    contract addresses the chain role records first)."""
    spec = spec() if callable(spec) else spec
    have = host.get_fact(TestnetUnits, testnet=spec.testnet).get(spec.name)
    if have and have["spec"] == spec.digest():
        if have["running"]:
            host.noop(f"unit {spec.name} is up to date")
            return
        yield f"systemctl start {spec.name}"
        return
    yield f"install -d -m 0700 {Paths(spec.testnet).config}"  # only root reaches the secrets
    yield FileUploadCommand(StringIO(spec.env_text()), spec.env_file)
    yield f"chmod 0600 {spec.env_file}"
    yield FileUploadCommand(StringIO(spec.unit_text()), f"{UNIT_DIR}/{spec.name}")
    yield "systemctl daemon-reload"
    yield f"systemctl enable -q {spec.name}"
    yield f"systemctl restart {spec.name}"


@operation()
def packages(names: list[str]):  # type: ignore[no-untyped-def]
    """Debian packages the roles need; the index is updated only when one is missing, so
    provisioned hosts (and twenty at once) do not all fetch it."""
    installed = host.get_fact(DebPackages)
    missing = [n for n in names if n not in installed]
    if not missing:
        host.noop("packages are installed")
        return
    yield from apt.update._inner(cache_time=86400)
    yield from apt.packages._inner(packages=missing)


@operation()
def venv(testnet: str, wheels: Wheelhouse):  # type: ignore[no-untyped-def]
    """A virtualenv holding the project as the wheelhouse installed it on the controller:
    upload, unpack, no pip on the host; replaced when the build changes."""
    p = Paths(testnet)
    marker = f"{p.venv}/.shakedown-build"
    if host.get_fact(FileContents, path=marker) == [wheels.digest]:
        host.noop(f"venv {p.venv} has build {wheels.digest}")
        return
    site = f"{p.venv}/lib/python{wheels.python}/site-packages"
    tarballs = [f"{p.root}/{layer.name}" for layer in wheels.layers]
    yield f"install -d {p.root}"
    for layer, tarball in zip(wheels.layers, tarballs, strict=True):
        yield FileUploadCommand(str(layer), tarball)
    unpack = " && ".join(f"tar -xzf {t} -C {site}" for t in tarballs)
    # Built by a controller python of another version: compile here, once, as root (the
    # services' dynamic users could not write their bytecode caches).
    compile_here = "" if wheels.compiled else f" && python3 -m compileall -q -j 0 {site}"
    yield (f"rm -rf {p.venv} && python3 -m venv --without-pip {p.venv} && mkdir -p {site}"
           f" && {unpack}{compile_here}"
           f" && echo {wheels.digest} > {marker} && rm -f {' '.join(tarballs)}")


@operation()
def postgres_cluster(testnet: str, password: str):  # type: ignore[no-untyped-def]
    """A database cluster of the testnet's own, reachable from peers by password."""
    pgdata = f"{Paths(testnet).data}/db"
    if host.get_fact(FileContents, path=f"{pgdata}/PG_VERSION"):
        host.noop(f"cluster {pgdata} exists")
        return
    pwfile = f"{Paths(testnet).data}/.pw"
    yield f"install -d -o postgres -m 0700 {pgdata}"
    yield f"install -o postgres -m 0600 /dev/null {pwfile}"
    yield StringCommand("printf %s", HiddenValue(shlex.quote(password), "***"), ">", pwfile)
    yield (f"cd / && runuser -u postgres -- {PG_BIN}/initdb -D {pgdata} -U postgres"
           f" --pwfile={pwfile} --auth-local=peer --auth-host=scram-sha-256 --no-instructions"
           " --encoding=UTF8 --locale=C.UTF-8 --no-sync"  # disposable data, as fsync=off
           f" > /dev/null && rm -f {pwfile}"
           f" && echo 'host all all 0.0.0.0/0 scram-sha-256' >> {pgdata}/pg_hba.conf")


@operation()
def remove_testnet(testnet: str):  # type: ignore[no-untyped-def]
    """Stop and remove exactly this testnet's units, then its directories."""
    if not host.get_fact(TestnetLeftovers, testnet=testnet):
        host.noop(f"nothing of testnet {testnet} left")
        return
    p = Paths(testnet)
    units = f"{UNIT_DIR}/{testnet}-*.service"
    yield (f"for f in {units}; do [ -e \"$f\" ] || continue; n=$(basename \"$f\"); "
           "systemctl disable -q --now \"$n\"; rm -f \"$f\"; systemctl reset-failed \"$n\" "
           "2>/dev/null; done; systemctl daemon-reload")
    yield f"rm -rf {p.root} {p.config} {p.data}"
