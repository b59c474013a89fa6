"""The project installed once on the controller for the hosts of the systemd runtime.

A host gets refnode, its gateway and the toxiproxy server as a tarball of an installed
``site-packages``, never from an index: staging VMs and air-gapped labs need not reach PyPI, and
every host gets the same bytes. The controller builds the project's own wheel (from the same files
the node image hashes), downloads binary wheels of what the node side imports for the hosts'
Python version, installs them all with pip for that Python into one directory and compiles the
bytecode when its own Python has the same version. A host then only unpacks: pip's resolving and
compiling ran once here instead of on every host, which is what lets twenty hosts provision at
once on two cores. The tarball is cached by its inputs' hash.

    wheels = wheelhouse("3.11")  # Wheelhouse(layers=(~/.cache/shakedown/wheelhouse/deps-..., ...)
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from shakedown.errors import ConfigError, ShakedownError
from shakedown.images.build import default_cache_dir, repo_root
from shakedown.images.context import read_pyproject, source_files

# Controller-side dependencies: the deploy tool, the Docker SDK, the test runner and plotting
# run on the controller only, so hosts do not carry them.
CONTROLLER_ONLY = ("pyinfra", "docker", "pytest", "matplotlib")
# Tarballs kept in the cache per layer: a project layer is 1 MB and every checkout (or edit)
# has its own; the dependencies' 35 MB layer is shared.
KEEP = {"deps": 3, "project": 12}
LAYOUT = "site-2"  # what the tarball holds; a new layout is a new cache entry
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


@dataclass(frozen=True)
class Wheelhouse:
    """Gzipped tarballs that unpack into one site-packages (the dependencies, then the
    project), their hash (names the build everywhere); ``compiled`` when they carry bytecode
    for ``python``."""

    layers: tuple[Path, ...]
    digest: str
    python: str
    compiled: bool


def host_requirements(root: Path) -> tuple[str, ...]:
    """The project (by name) and its pinned dependencies that the node side imports."""
    project = read_pyproject(root)["project"]
    deps = [d for d in project.get("dependencies", [])
            if re.split(r"[\[=<>~! ]", d, maxsplit=1)[0] not in CONTROLLER_ONLY]
    return (project["name"], *deps)


_building = threading.Lock()  # cooperative under pyinfra's gevent: one build per process


def wheelhouse(python: str) -> Wheelhouse:
    """The wheelhouse for hosts running CPython ``python`` (``3.11``), built when missing.

    pyinfra plans every host at once (greenlets); the first builds, the others wait for it."""
    with _building:
        return _wheelhouse(python)


@cache
def _wheelhouse(python: str) -> Wheelhouse:
    if not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"host python {python!r}: expected a CPython 3 version like 3.11")
    root = repo_root()
    files = source_files(root, read_pyproject(root))
    requirements = host_requirements(root)
    compiled = python == "{}.{}".format(*sys.version_info[:2])
    target = ("--only-binary=:all:", "--implementation", "cp", "--python-version", python,
              *(a for p in PLATFORMS for a in ("--platform", p)))
    common = f"{LAYOUT}\0{python}\0{compiled}\0{' '.join(target)}\n"
    # Two layers, so that a source edit rebuilds only the project's small one.
    deps = _layer("deps", common + " ".join(requirements[1:]), compiled,
                  partial(_dependencies, requirements[1:], target))
    sources = "".join(f"{rel}\0{hashlib.sha256((root / rel).read_bytes()).hexdigest()}\n"
                      for rel in files)
    project = _layer("project", common + sources, compiled, partial(_project, root, files))
    digest = hashlib.sha256(f"{deps.name}\0{project.name}".encode()).hexdigest()[:16]
    return Wheelhouse((deps, project), digest, python, compiled)


def _dependencies(requirements: tuple[str, ...], target: tuple[str, ...], wheels: Path,
                  site: Path) -> None:
    """Binary wheels for the hosts' python and platform, installed for it into ``site``."""
    _pip(["download", "-q", *target, "-d", str(wheels), *requirements])
    _pip(["install", "-q", "--no-index", "--find-links", str(wheels), "--no-compile",
          "--target", str(site), *target, *requirements])


def _project(root: Path, files: list[str], wheels: Path, site: Path) -> None:
    """The project without its controller-side dependencies (pyinfra, docker...): hosts run
    only what the node side imports; built from exactly the hashed files."""
    src = wheels.parent / "src"
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, src / rel)
    _pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)])
    wheel = next(wheels.glob("*.whl"))
    _pip(["install", "-q", "--no-deps", "--no-compile", "--target", str(site), str(wheel)])


def _layer(kind: str, key: str, compiled: bool, fill: Callable[[Path, Path], None]) -> Path:
    """The cached tarball ``<kind>-<hash of key>.tar.gz``; when missing, ``fill(wheels, site)``
    installs into ``site``, which is compiled (when the hosts' python is ours) and packed."""
    cache_dir = default_cache_dir() / "wheelhouse"
    dest = cache_dir / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.tar.gz"
    if dest.is_file():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{kind}.lock", "w") as lock:  # other checkouts build it once too
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not dest.is_file():
            _build(kind, dest, compiled, fill)
    return dest


def _build(kind: str, dest: Path, compiled: bool, fill: Callable[[Path, Path], None]) -> None:
    cache_dir = dest.parent
    with tempfile.TemporaryDirectory(prefix="wheelhouse-") as tmp:
        wheels, site = Path(tmp) / "wheels", Path(tmp) / "site"
        wheels.mkdir()
        fill(wheels, site)
        shutil.rmtree(site / "bin", ignore_errors=True)  # scripts naming this machine's python
        if compiled:  # same magic number as the hosts' python; tar keeps the mtimes it checks
            proc = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(site)],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise ShakedownError(f"wheelhouse: compileall failed: {proc.stdout[-300:]}")
        partial = dest.with_suffix(".partial")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            for entry in sorted(site.iterdir()):
                tar.add(entry, arcname=entry.name, filter=_root_owned)
        partial.replace(dest)
    # The cache would grow by one tarball per source edit: keep the newest few of each kind.
    built = sorted(cache_dir.glob(f"{kind}-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    for old in built[:-KEEP[kind]]:
        old.unlink(missing_ok=True)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Hosts unpack as root: files owned by root, whoever built them here."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _pip(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        error = next((line for line in lines if "ERROR" in line), lines[-1])
        raise ShakedownError(f"wheelhouse: pip {args[0]} failed: {error.strip()}")
