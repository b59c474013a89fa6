"""Build contexts as data: the files that go into an image, their hash, and a directory of them.

The hash covers every byte the build sees (Dockerfile, scripts, the repository's source, the
anvil binary, the host's CA bundle) plus the base image's hash, so it can name the image:
an unchanged input is found by tag without building, a changed one gets a new tag.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shakedown.errors import ConfigError

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ANVIL_BINARY = Path("tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Entry:
    """One file of a context: copied from ``path`` or written from ``data``."""

    arcname: str
    path: Path | None = None
    data: bytes | None = None
    executable: bool = False

    def content(self) -> bytes:
        """The file's bytes (read now: the hash must see what the build will see)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass(frozen=True)
class Context:
    """A named build context on top of a parent image of known hash."""

    name: str
    parent_digest: str
    entries: tuple[Entry, ...]

    def digest(self) -> str:
        """sha256 over the parent's hash and every entry's name, mode and bytes."""
        h = hashlib.sha256(f"{self.name}\0{self.parent_digest}\0".encode())
        for e in sorted(self.entries, key=lambda e: e.arcname):
            body = hashlib.sha256(e.content()).hexdigest()
            h.update(f"{e.arcname}\0{int(e.executable)}\0{body}\n".encode())
        return h.hexdigest()

    def materialize(self, dest: Path) -> None:
        """Write the context into ``dest`` (an empty directory) for ``docker build``."""
        for e in self.entries:
            target = dest / e.arcname
            target.parent.mkdir(parents=True, exist_ok=True)
            if e.data is not None:
                target.write_bytes(e.data)
            else:
                assert e.path is not None
                shutil.copyfile(e.path, target)
            target.chmod(0o755 if e.executable else 0o644)


def recipe_entries(root: Path, name: str) -> list[Entry]:
    """The checked-in part of a context: everything under ``images/<name>/``."""
    folder = root / "images" / name
    if not (folder / "Dockerfile").is_file():
        raise ConfigError(f"image {name}: no Dockerfile at {folder}; run from a shakedown checkout")
    return [
        Entry(str(p.relative_to(folder)), path=p, executable=os.access(p, os.X_OK))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def ca_entry(bundle: Path = HOST_CA_BUNDLE) -> Entry:
    """The host's CA bundle as ``host-ca.crt`` (empty when the host has none): pip's trust."""
    data = bundle.read_bytes() if bundle.is_file() else b""
    return Entry("host-ca.crt", data=data)


def anvil_context(root: Path, parent_digest: str) -> Context:
    """The anvil image: the recipe plus the binary from the npm package in ``tools/``."""
    binary = root / ANVIL_BINARY
    if not binary.is_file():
        raise ConfigError(f"anvil: binary not found at {binary}; run scripts/setup (npm ci)")
    entries = [*recipe_entries(root, "anvil"), Entry("anvil", path=binary, executable=True)]
    return Context("anvil", parent_digest, tuple(entries))


def postgres_context(root: Path, parent_digest: str) -> Context:
    """The postgres image: Debian's server plus our entrypoint; nothing from the host."""
    return Context("postgres", parent_digest, tuple(recipe_entries(root, "postgres")))


def node_context(root: Path, parent_digest: str, ca: Path = HOST_CA_BUNDLE) -> Context:
    """The node image: the recipe, pinned requirements, the CA bundle and the package source."""
    pyproject = read_pyproject(root)
    entries = [
        *recipe_entries(root, "node"),
        ca_entry(ca),
        Entry("requirements.txt", data=_requirements(pyproject).encode()),
        *(Entry(f"src/{rel}", path=root / rel) for rel in source_files(root, pyproject)),
    ]
    return Context("node", parent_digest, tuple(entries))


def source_files(root: Path, pyproject: dict) -> list[str]:
    """Repo-relative files the wheel is made of: pyproject, readme, the included packages."""
    files = ["pyproject.toml"]
    readme = pyproject.get("project", {}).get("readme")
    if isinstance(readme, str) and (root / readme).is_file():
        files.append(readme)
    for top in _package_dirs(root, pyproject):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")
            )
            for f in sorted(filenames):
                if not f.endswith(_SKIP_SUFFIXES):
                    files.append(str((Path(dirpath) / f).relative_to(root)))
    return files


def _package_dirs(root: Path, pyproject: dict) -> list[str]:
    """Top-level package directories named by ``[tool.setuptools.packages.find] include``."""
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {})
    patterns = find.get("find", {}).get("include", ["*"]) if isinstance(find, dict) else ["*"]
    return [
        d.name
        for d in sorted(root.iterdir())
        if d.is_dir()
        and (d / "__init__.py").is_file()
        and any(fnmatch.fnmatch(d.name, pat) for pat in patterns)
    ]


def _requirements(pyproject: dict) -> str:
    """Build requirements plus runtime dependencies: the slow layer, keyed on pyproject."""
    build = pyproject.get("build-system", {}).get("requires", [])
    deps = pyproject.get("project", {}).get("dependencies", [])
    return "".join(f"{r}\n" for r in [*build, *deps])


def read_pyproject(root: Path) -> dict:
    path = root / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"node image: no pyproject.toml at {root}; run from a checkout") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"node image: {path} is not valid TOML: {e}") from e
