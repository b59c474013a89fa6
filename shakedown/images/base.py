"""The Debian base image, made without a registry: debootstrap a rootfs, then ``docker import``.

debootstrap is the slow part (about a minute), so its tarball is cached under the cache dir
and named by the recipe's hash; a lost image is re-imported from it in seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from shakedown.errors import ConfigError, ShakedownError
from shakedown.images import spec

Log = Callable[[str], None]

_APT_CONF = """\
// Small images: no recommends, no kept .debs (written by shakedown/images/base.py).
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Keep-Downloaded-Packages "false";
"""
_DPKG_NODOC = """\
# No docs, man pages or translations in shakedown images (shakedown/images/base.py).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""
_SOURCES = """\
deb {mirror} {suite} main
deb {mirror} {suite}-updates main
deb http://deb.debian.org/debian-security {suite}-security main
"""


def base_digest() -> str:
    """Hash of everything that decides the rootfs: suite, mirror, packages, files we write."""
    parts = [spec.BASE_RECIPE, spec.BASE_SUITE, spec.BASE_MIRROR, *spec.BASE_PACKAGES]
    text = "\0".join([*parts, _APT_CONF, _DPKG_NODOC, _SOURCES])
    return hashlib.sha256(text.encode()).hexdigest()


def base_is_current(client: docker.DockerClient, digest: str) -> bool:
    """True when ``shakedown/debian-base:<suite>`` exists and was made from this recipe."""
    try:
        image = client.images.get(spec.BASE_REF)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(spec.LABEL_HASH) == digest


def ensure_base(
    client: docker.DockerClient, cache_dir: Path, *, rebuild: bool = False, log: Log = print
) -> str:
    """Make sure the base image exists for the current recipe; return the recipe's hash.

    ``rebuild`` re-imports the image from the cached tarball (debootstrap runs only when the
    tarball is missing). Example: ``ensure_base(client, Path("~/.cache/shakedown"))``.
    """
    digest = base_digest()
    if not rebuild and base_is_current(client, digest):
        return digest
    tarball = cache_dir / f"debian-{spec.BASE_SUITE}-{digest[: spec.TAG_HASH_LEN]}.tar"
    if not tarball.is_file():
        _debootstrap(tarball, log)
    log(f"images: importing {spec.BASE_REF} from {tarball}")
    _import(client, tarball, digest)
    return digest


def _debootstrap(tarball: Path, log: Log) -> None:
    """Create the rootfs with debootstrap and pack it into ``tarball`` (atomically)."""
    if shutil.which("debootstrap") is None:
        raise ConfigError("debootstrap is not installed; run scripts/setup")
    if os.geteuid() != 0:
        raise ConfigError("debootstrap needs root to build the Debian base image; run as root")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    log(f"images: debootstrap {spec.BASE_SUITE} (minbase + {len(spec.BASE_PACKAGES)} packages)")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(spec.BASE_PACKAGES)}",
            spec.BASE_SUITE,
            str(rootfs),
            spec.BASE_MIRROR,
        ]
        _run(cmd, what="debootstrap", logfile=rootfs / "debootstrap" / "debootstrap.log")
        _trim(rootfs)
        partial = Path(tmp) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], what="tar")
        partial.replace(tarball)
    for old in tarball.parent.glob(f"debian-{spec.BASE_SUITE}-*.tar"):
        if old != tarball:  # a previous recipe's rootfs: never used again
            old.unlink(missing_ok=True)


def _trim(rootfs: Path) -> None:
    """Make the rootfs image-like: apt sources and settings, no caches, docs or host files."""
    (rootfs / "etc/apt/sources.list").write_text(
        _SOURCES.format(mirror=spec.BASE_MIRROR, suite=spec.BASE_SUITE)
    )
    (rootfs / "etc/apt/apt.conf.d/90shakedown").write_text(_APT_CONF)
    (rootfs / "etc/dpkg/dpkg.cfg.d/90shakedown-nodoc").write_text(_DPKG_NODOC)
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/locale/*",
        "var/log/*.log",
    ):
        for p in rootfs.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    for name in ("etc/resolv.conf", "etc/hostname"):  # docker provides these at run time
        (rootfs / name).unlink(missing_ok=True)


def _import(client: docker.DockerClient, tarball: Path, digest: str) -> None:
    """``docker import`` the tarball as the base image, labelled with the recipe's hash."""
    repository, tag = spec.BASE_REF.split(":")
    changes = [
        f"LABEL {spec.LABEL_IMAGE}=debian-base {spec.LABEL_HASH}={digest}",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["/bin/bash"]',
    ]
    try:
        client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=changes)
    except docker.errors.APIError as e:
        raise ShakedownError(f"images: docker import of {tarball} failed: {e}") from e
    if not base_is_current(client, digest):
        raise ShakedownError(f"images: docker import of {tarball} did not produce {spec.BASE_REF}")


def _run(cmd: list[str], *, what: str, logfile: Path | None = None) -> None:
    """Run a host command; on failure raise with its last output lines and where to look."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode == 0:
        return
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    if logfile is not None and logfile.is_file():
        tail = logfile.read_text(errors="replace").strip().splitlines()[-5:]
    raise ShakedownError(f"images: {what} failed (exit {proc.returncode}): {' | '.join(tail)}")
