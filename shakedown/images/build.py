"""Make sure a testnet's images exist: build only what is missing, pull official ones if we can.

Each local image is tagged with the hash of its context (see ``context.py``), so the check
"is it up to date?" is one ``images.get`` per image, and the whole call is a no-op in a
fraction of a second when nothing changed. Builds run under a file lock in the cache dir so
two processes do not build the same thing at once.
"""

from __future__ import annotations

import collections
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import requests

from shakedown.errors import ConfigError, ShakedownError, UnreachableError
from shakedown.images import context, registry, spec
from shakedown.images.base import base_digest, ensure_base

Log = Callable[[str], None]


def connect(timeout: float = 60.0) -> docker.DockerClient:
    """A Docker client for the engine named by ``DOCKER_HOST`` (or the local socket), pinged."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise UnreachableError(
            f"cannot reach the Docker engine at {where}; start it with scripts/setup"
        ) from e
    return client


def default_cache_dir() -> Path:
    """``$SHAKEDOWN_CACHE_DIR``, else ``$XDG_CACHE_HOME/shakedown``, else ``~/.cache/shakedown``."""
    if os.environ.get("SHAKEDOWN_CACHE_DIR"):
        return Path(os.environ["SHAKEDOWN_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "shakedown"


def repo_root() -> Path:
    """The checkout this package runs from; the build contexts live in its ``images/``."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "images").is_dir():
        raise ConfigError(f"no images/ directory in {root}; build images from a shakedown checkout")
    return root


def ensure_images(
    client: docker.DockerClient,
    *,
    rebuild: bool = False,
    log: Log = print,
    root: Path | None = None,
    cache_dir: Path | None = None,
) -> spec.ImageSet:
    """Return the images a testnet runs, building (or pulling) only what is missing.

    ``rebuild`` re-imports the base from its cached rootfs and builds every local image
    without the layer cache. Example: ``ensure_images(connect()).node`` ->
    ``"shakedown/node:1a2b3c4d5e6f"``.
    """
    _ping(client)
    root = root or repo_root()
    source, why = registry.choose_source(client)
    where = (
        "official images (local builds if a pull fails)" if source == "registry" else "local builds"
    )
    log(f"images: {where} for anvil, postgres, toxiproxy ({why})")
    official = _official(client, log) if source == "registry" else {}
    needed = ["node", *sorted({"anvil", "postgres"} - set(official))]
    contexts = _local_contexts(root, needed)
    refs = {name: spec.local_ref(name, ctx.digest()) for name, ctx in contexts.items()}
    missing = [n for n in contexts if rebuild or not _present(client, refs[n])]
    if missing:
        _build_missing(client, contexts, refs, missing, rebuild, log, cache_dir)
    refs.update(official)
    return spec.ImageSet(
        node=refs["node"],
        anvil=refs["anvil"],
        postgres=refs["postgres"],
        toxiproxy=refs.get("toxiproxy", refs["node"]),
        official=frozenset(official),
    )


def _official(client: docker.DockerClient, log: Log) -> dict[str, str]:
    """Pull the official images; an image that fails to pull is left out (built locally)."""
    wanted = {
        "postgres": spec.OFFICIAL_POSTGRES,
        "anvil": spec.OFFICIAL_ANVIL,
        "toxiproxy": spec.OFFICIAL_TOXIPROXY,
    }
    return {name: ref for name, ref in wanted.items() if registry.pull(client, ref, log)}


def _local_contexts(root: Path, needed: list[str]) -> dict[str, context.Context]:
    """The build contexts of the images we make ourselves, on top of the current base."""
    parent = base_digest()
    makers = {
        "node": context.node_context,
        "anvil": context.anvil_context,
        "postgres": context.postgres_context,
    }
    return {name: makers[name](root, parent) for name in needed}


def _build_missing(
    client: docker.DockerClient,
    contexts: dict[str, context.Context],
    refs: dict[str, str],
    missing: list[str],
    rebuild: bool,
    log: Log,
    cache_dir: Path | None,
) -> None:
    """Under the build lock: the base, then the missing images side by side.

    Each is re-checked first (a peer may have built it while we waited for the lock). The
    builds wait mostly on the network (pip, apt), so running them together saves their sum.
    """
    cache = cache_dir or default_cache_dir()
    with _build_lock(cache):
        ensure_base(client, cache, rebuild=rebuild, log=log)
        todo = [n for n in missing if rebuild or not _present(client, refs[n])]
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="build") as pool:
            jobs = [
                pool.submit(_timed_build, client, contexts[n], refs[n], rebuild, log) for n in todo
            ]
            errors = [e for e in (j.exception() for j in jobs) if e is not None]
        if errors:
            raise errors[0]


def _timed_build(
    client: docker.DockerClient, ctx: context.Context, ref: str, nocache: bool, log: Log
) -> None:
    started = time.monotonic()
    build_image(client, ctx, ref, nocache=nocache)
    log(f"images: built {ref} in {time.monotonic() - started:.1f} s")


def build_image(
    client: docker.DockerClient, ctx: context.Context, ref: str, *, nocache: bool = False
) -> None:
    """``docker build`` one context into ``ref``, labelled; raise with the build's last lines."""
    labels = {spec.LABEL_IMAGE: ctx.name, spec.LABEL_HASH: ctx.digest()}
    tail: collections.deque[str] = collections.deque(maxlen=12)
    with tempfile.TemporaryDirectory(prefix=f"shakedown-{ctx.name}-") as tmp:
        ctx.materialize(Path(tmp))
        try:
            for chunk in client.api.build(
                path=tmp,
                tag=ref,
                labels=labels,
                buildargs={"BASE": spec.BASE_REF},
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            ):
                tail.extend(line for line in chunk.get("stream", "").splitlines() if line.strip())
                if "error" in chunk:
                    raise ShakedownError(
                        f"images: building {ref} failed: {chunk['error'].strip()}"
                        f" | last output: {' | '.join(tail)}"
                    )
        except docker.errors.APIError as e:
            raise ShakedownError(f"images: building {ref} failed: {e.explanation or e}") from e
    if not _present(client, ref):
        raise ShakedownError(f"images: build of {ref} ended without an image: {' | '.join(tail)}")


def _present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _ping(client: docker.DockerClient) -> None:
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        url = getattr(client.api, "base_url", "?")
        raise UnreachableError(
            f"cannot reach the Docker engine at {url}; start it with scripts/setup"
        ) from e


@contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    """An exclusive lock file, so concurrent callers build each image once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
