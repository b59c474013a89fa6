"""The project as wheels for hosts of the systemd runtime: built once on the controller.

A host installs refnode, its gateway and the toxiproxy server into a virtualenv from a tarball of
wheels, never from an index: staging VMs and air-gapped labs need not reach PyPI, and every host
gets the same bytes. The tarball holds the project's own wheel (built from the same files the
node image hashes) and binary wheels of what the node side imports, for the hosts' Python
version; it is cached by its inputs' hash.

    wheels = wheelhouse("3.11")    # Wheelhouse(path=~/.cache/shakedown/wheelhouse/ab12.tar, ...)
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shakedown.errors import ConfigError, ShakedownError
from shakedown.images.build import default_cache_dir, repo_root
from shakedown.images.context import read_pyproject, source_files

# Controller-side dependencies: the deploy tool, the Docker SDK, the test runner and plotting
# run on the controller only, so hosts do not carry them.
CONTROLLER_ONLY = ("pyinfra", "docker", "pytest", "matplotlib")
KEEP = 3  # wheelhouses kept in the cache
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


@dataclass(frozen=True)
class Wheelhouse:
    """A tarball of wheels, its hash (names the build everywhere) and what to install."""

    path: Path
    digest: str
    requirements: tuple[str, ...]


def host_requirements(root: Path) -> tuple[str, ...]:
    """The project (by name) and its pinned dependencies that the node side imports."""
    project = read_pyproject(root)["project"]
    deps = [d for d in project.get("dependencies", [])
            if re.split(r"[\[=<>~! ]", d, maxsplit=1)[0] not in CONTROLLER_ONLY]
    return (project["name"], *deps)


@cache
def wheelhouse(python: str) -> Wheelhouse:
    """The wheelhouse for hosts running CPython ``python`` (``3.11``), built when missing."""
    if not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"host python {python!r}: expected a CPython 3 version like 3.11")
    root = repo_root()
    files = source_files(root, read_pyproject(root))
    requirements = host_requirements(root)
    h = hashlib.sha256(f"{python}\0{' '.join(requirements)}\0{' '.join(PLATFORMS)}\n".encode())
    for rel in files:
        h.update(f"{rel}\0{hashlib.sha256((root / rel).read_bytes()).hexdigest()}\n".encode())
    digest = h.hexdigest()[:16]
    path = default_cache_dir() / "wheelhouse" / f"{digest}.tar"
    if not path.is_file():
        _build(root, files, requirements, python, path)
    return Wheelhouse(path, digest, requirements)


def _build(root: Path, files: list[str], requirements: tuple[str, ...], python: str,
           dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheelhouse-") as tmp:
        src, wheels = Path(tmp) / "src", Path(tmp) / "wheels"
        for rel in files:  # build from exactly the hashed files, not the working tree's debris
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, src / rel)
        _pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)])
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        _pip(["download", "-q", "--only-binary=:all:", "--implementation", "cp",
              "--python-version", python, *platforms, "-d", str(wheels), *requirements[1:]])
        partial = dest.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for wheel in sorted(wheels.iterdir()):
                tar.add(wheel, arcname=wheel.name)
        partial.replace(dest)
    # The cache would grow by one tarball per source edit: keep the newest few (a second
    # checkout deploying at the same time keeps its own).
    for old in sorted(dest.parent.glob("*.tar"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
        old.unlink(missing_ok=True)


def _pip(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        error = next((line for line in lines if "ERROR" in line), lines[-1])
        raise ShakedownError(f"wheelhouse: pip {args[0]} failed: {error.strip()}")
