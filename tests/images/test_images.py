"""The testnet's images, against the real Docker engine: built once, found by tag, and working.

Steps: build (or find) the images once per module — on a fresh machine this is the cold build,
marked ``slow`` but run by default because CI needs the images anyway; call again and expect a
no-op; then start each image and check it does its job. Every container carries the label
``shakedown.testnet=test-images-<random>`` and is removed at teardown, even after a failure.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import psycopg
import pytest

from shakedown.images import ImageSet, connect, ensure_images, repo_root
from shakedown.images.context import node_context, source_files
from shakedown.waiting import wait_for

TESTNET = f"test-images-{secrets.token_hex(4)}"
LABELS = {"shakedown.testnet": TESTNET}
Run = Callable[..., "docker.models.containers.Container"]


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = connect()
    yield c
    for leftover in c.containers.list(all=True, filters={"label": f"shakedown.testnet={TESTNET}"}):
        leftover.remove(force=True, v=True)
    c.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen copy of what the images are built from, so edits made meanwhile in the
    checkout (others work in it) cannot change the node tag between two calls."""
    src, dest = repo_root(), tmp_path_factory.mktemp("checkout")
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    for rel in source_files(src, pyproject):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, dest / rel)
    shutil.copytree(src / "images", dest / "images")
    (dest / "tools").symlink_to(src / "tools")
    return dest


@pytest.fixture(scope="module")
def built(client: docker.DockerClient, root: Path) -> tuple[ImageSet, float, list[str]]:
    lines: list[str] = []
    started = time.monotonic()
    images = ensure_images(client, log=lines.append, root=root)
    return images, time.monotonic() - started, lines


@pytest.fixture
def run(client: docker.DockerClient) -> Iterator[Run]:
    """Start a labelled, detached container with ports published on 127.0.0.1 only."""
    started: list = []

    def _run(image: str, command=None, *, ports=(), **kw):
        published = {f"{p}/tcp": ("127.0.0.1", None) for p in ports}
        c = client.containers.run(
            image,
            command,
            detach=True,
            labels=LABELS,
            ports=published,
            name=f"{TESTNET}-{secrets.token_hex(3)}",
            **kw,
        )
        started.append(c)
        c.reload()
        return c

    yield _run
    for c in started:
        try:
            c.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


def host_port(container, port: int) -> int:
    return int(container.ports[f"{port}/tcp"][0]["HostPort"])


def poll(what: str, probe: Callable[[], object], timeout: float = 30.0) -> object:
    """Call ``probe`` until it returns without raising."""
    return wait_for(probe, lambda _: True, timeout=timeout, what=what)


def exec_ok(client: docker.DockerClient, run: Run, image: str, script: str) -> str:
    """Run ``sh -c script`` in a fresh container and return its output; fail on non-zero."""
    c = run(image, ["sh", "-c", script], entrypoint=[])
    status = c.wait(timeout=60)
    out = c.logs().decode(errors="replace")
    assert status["StatusCode"] == 0, f"{image}: `{script}` exited {status['StatusCode']}: {out}"
    return out


@pytest.mark.slow
def test_cold_build_gives_labelled_images(client, built) -> None:
    images, seconds, lines = built
    print(f"ensure_images: {seconds:.1f} s; " + " / ".join(lines))
    for name in ("node", "anvil", "postgres"):
        ref = getattr(images, name)
        if name in images.official:
            continue
        assert ref.startswith(f"shakedown/{name}:"), f"{name}: unexpected ref {ref}"
        labels = client.images.get(ref).labels
        assert labels.get("shakedown.image") == name, f"{ref}: labels {labels}"
    if "toxiproxy" not in images.official:
        assert images.toxiproxy == images.node


def test_second_call_is_a_noop(client, built, root) -> None:
    first, _, _ = built
    lines: list[str] = []
    started = time.monotonic()
    again = ensure_images(client, log=lines.append, root=root)
    seconds = time.monotonic() - started
    assert again == first, f"tags changed without a change: {first} -> {again}"
    assert not [ln for ln in lines if "built" in ln or "import" in ln], lines
    assert seconds < 1.0, f"a no-op ensure_images took {seconds:.2f} s"


def test_source_change_gives_new_tag(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    copy_node_recipe(root)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["a==1"]\n'
        '[tool.setuptools.packages.find]\ninclude = ["pkg*"]\n'
    )
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("A = 1\n")
    before = node_context(root, "base").digest()
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"noise")
    assert node_context(root, "base").digest() == before, "__pycache__ must not count"
    (root / "pkg" / "__init__.py").write_text("A = 2\n")
    assert node_context(root, "base").digest() != before, "a source change must change the tag"
    assert node_context(root, "other-base").digest() != before, "a new base must change the tag"


def copy_node_recipe(root: Path) -> None:
    """Copy the real images/node recipe into a scratch repo."""
    src = repo_root() / "images" / "node"
    dest = root / "images" / "node"
    dest.mkdir(parents=True)
    for f in src.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())


def test_postgres_accepts_a_connection(built, run) -> None:
    images, _, _ = built
    password = secrets.token_hex(8)
    c = run(
        images.postgres,
        ports=[5432],
        environment={"POSTGRES_PASSWORD": password, "POSTGRES_FSYNC": "off"},
    )
    port = host_port(c, 5432)
    dsn = f"host=127.0.0.1 port={port} user=postgres password={password} connect_timeout=2"

    def query() -> tuple[str, str]:
        with psycopg.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
            return version, fsync

    version, fsync = poll(f"postgres on 127.0.0.1:{port}", query)
    assert version.startswith("15."), f"postgres: server_version {version}"
    assert fsync == "off", f"postgres: POSTGRES_FSYNC=off gave fsync={fsync}"


def test_anvil_answers_chain_id(built, run) -> None:
    images, _, _ = built
    c = run(images.anvil, ["anvil --host 0.0.0.0 --port 8545"], ports=[8545])
    url = f"http://127.0.0.1:{host_port(c, 8545)}"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})

    def chain_id() -> int:
        req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=2) as resp:
            return int(json.load(resp)["result"], 16)

    assert poll(f"anvil at {url}", chain_id) == 31337


def test_node_image_imports_the_project(client, built, run) -> None:
    images, _, _ = built
    exec_ok(client, run, images.node, "python -c 'import shakedown, refnode'")


def test_node_image_serves_toxiproxy(client, built, run) -> None:
    images, _, _ = built
    if "toxiproxy" in images.official:
        pytest.skip("toxiproxy is Shopify's image here")
    exec_ok(client, run, images.toxiproxy, "python -m shakedown.toxiproxy --help")


def test_images_carry_fault_tools(client, built, run) -> None:
    images, _, _ = built
    for ref in {images.node, images.postgres, images.anvil} - {
        getattr(images, n) for n in images.official
    }:
        exec_ok(client, run, ref, "tc -V && iptables -V && conntrack --version && python3 -V")
