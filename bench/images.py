"""Time ``ensure_images``: cold (no base, no cached rootfs), cold-with-rootfs, and warm.

Usage: ``.venv/bin/python bench/images.py``. It REMOVES every image labelled
``shakedown.image`` (images in use by a container are kept and reported) and uses a scratch
cache dir, so your ``~/.cache/shakedown`` is untouched. Prints the machine first.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

from shakedown.images import connect, ensure_images
from shakedown.images.spec import LABEL_IMAGE


def machine() -> str:
    """``nproc``, CPU model and memory: the figures mean nothing without them."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 2**20:.0f} GiB, {platform.platform()}"


def remove_images(client: docker.DockerClient) -> list[str]:
    """Remove every shakedown image (all tags); return those a container still uses."""
    kept = []
    for image in client.images.list(filters={"label": LABEL_IMAGE}):
        try:
            client.images.remove(image.id, force=False, noprune=False)
        except docker.errors.APIError as e:
            if getattr(e, "status_code", None) == 404:  # a child went first and took it along
                continue
            kept.append(f"{image.tags or image.short_id}: {e.explanation}")
    return kept


def timed(client: docker.DockerClient, cache: Path, label: str) -> float:
    started = time.monotonic()
    images = ensure_images(client, cache_dir=cache, log=lambda line: print(f"    {line}"))
    seconds = time.monotonic() - started
    print(f"{label:<32} {seconds:7.2f} s   {images.node}")
    return seconds


def main() -> None:
    client = connect()
    print(f"machine: {machine()}")
    print(f"docker:  {client.version().get('Version')}")
    with tempfile.TemporaryDirectory(prefix="shakedown-bench-") as tmp:
        cache = Path(tmp)
        kept = remove_images(client)
        if kept:
            print(f"  not removed (in use), so not fully cold: {kept}")
        timed(client, cache, "cold (debootstrap + all builds)")
        remove_images(client)
        timed(client, cache, "cold, rootfs cached")
        timed(client, cache, "warm (all present)")
        timed(client, cache, "warm again")


if __name__ == "__main__":
    main()
