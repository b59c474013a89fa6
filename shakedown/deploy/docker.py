"""The docker runtime: container specs with a config hash, facts and idempotent operations.

pyinfra's ``docker.container`` does not notice changed settings, so every container we run
carries ``shakedown.spec=<hash of its spec>``; the operation compares that label with the
wanted spec and recreates only what drifted. Secrets travel as masked strings, never printed.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation
from pyinfra.api.hiddenvalue import HiddenValue

LABEL_TESTNET = "shakedown.testnet"
LABEL_SPEC = "shakedown.spec"
LABEL_SERVICE = "shakedown.service"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that decides a container; its hash is the drift label."""

    testnet: str
    service: str
    image: str
    network: str
    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[int, int], ...] = ()  # (host port on 127.0.0.1, container port)
    volumes: tuple[tuple[str, str], ...] = ()  # (volume name, mount path)
    bind: str = "127.0.0.1"  # where ports are published: a remote Docker host's address

    @property
    def name(self) -> str:
        return f"{self.testnet}-{self.service}"

    def digest(self) -> str:
        """A short hash of the whole spec (secrets included, but only as a hash)."""
        fields = dict(self.__dict__)
        if fields["bind"] == "127.0.0.1":  # the default leaves existing containers' hashes alone
            del fields["bind"]
        text = json.dumps(fields, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run_command(self) -> StringCommand:
        """``docker run -d ...`` for pyinfra, secrets shown masked in its output."""
        return StringCommand(*self._args(
            lambda k, v: ["-e", HiddenValue(shlex.quote(f"{k}={v}"), f"{k}=***")]))

    def run_argv(self) -> list[str]:
        """The same ``docker run`` as an argv list, for running it directly (not printed)."""
        return shlex.split(" ".join(self._args(lambda k, v: ["-e", shlex.quote(f"{k}={v}")])))

    def _args(self, secret: Callable[[str, str], list[Any]]) -> list[Any]:
        """Labels, alias, published ports, env; ``secret`` renders each secret variable."""
        parts: list[Any] = [
            "docker run -d --restart unless-stopped",
            f"--name {self.name} --hostname {self.service}",
            f"--network {self.network} --network-alias {self.service}",
            f"--label {LABEL_TESTNET}={self.testnet}",
            f"--label {LABEL_SERVICE}={self.service}",
            f"--label {LABEL_SPEC}={self.digest()}",
        ]
        parts += [f"-p {self.bind}:{h}:{c}" for h, c in self.ports]
        parts += [f"-v {v}:{path}" for v, path in self.volumes]
        parts += ["-e " + shlex.quote(f"{k}={v}") for k, v in self.env]
        for k, v in self.secret_env:
            parts += secret(k, v)
        if self.entrypoint is not None:
            parts.append(f"--entrypoint {shlex.quote(self.entrypoint)}")
        parts.append(shlex.quote(self.image))
        parts += [shlex.quote(c) for c in self.command]
        return parts


class TestnetContainers(FactBase):
    """Containers of one testnet: ``{"sd-node-100": {"spec": "ab12...", "running": True}}``."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "docker"

    def command(self, testnet: str) -> str:
        fmt = "{{.Names}}\t{{.Label \"" + LABEL_SPEC + "\"}}\t{{.State}}"
        return f"docker ps -a --filter label={LABEL_TESTNET}={testnet} --format '{fmt}'"

    @staticmethod
    def default() -> dict[str, dict[str, Any]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        return spec_table(output, running="running")


def spec_table(output: list[str], running: str) -> dict[str, dict[str, Any]]:
    """``name<TAB>spec hash<TAB>state`` lines (containers or units) read as
    ``{name: {"spec": hash, "running": state == running}}``."""
    found: dict[str, dict[str, Any]] = {}
    for line in output:
        name, spec, state = [*line.split("\t"), "", ""][:3]
        found[name] = {"spec": spec, "running": state == running}
    return found


class TestnetObjects(FactBase):
    """Names of one testnet's networks or volumes (``kind``): ``["sd-net"]``."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "docker"

    def command(self, kind: str, testnet: str) -> str:
        fmt = "'{{.Name}}'"
        return f"docker {kind} ls --format {fmt} --filter label={LABEL_TESTNET}={testnet}"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


@operation()
def network(testnet: str, network_name: str):  # type: ignore[no-untyped-def]
    """A user-defined bridge network for the testnet, labelled."""
    if network_name in host.get_fact(TestnetObjects, kind="network", testnet=testnet):
        host.noop(f"network {network_name} exists")
        return
    label = f"{LABEL_TESTNET}={testnet}"
    yield f"docker network create --driver bridge --label {label} {network_name}"


@operation()
def volume(testnet: str, volume_name: str):  # type: ignore[no-untyped-def]
    """A named volume, labelled so teardown finds it."""
    if volume_name in host.get_fact(TestnetObjects, kind="volume", testnet=testnet):
        host.noop(f"volume {volume_name} exists")
        return
    yield f"docker volume create --label {LABEL_TESTNET}={testnet} {volume_name}"


@operation()
def container(spec: ContainerSpec | Callable[[], ContainerSpec]):  # type: ignore[no-untyped-def]
    """Run ``spec``; recreate it only when its spec hash differs; start it when stopped.

    ``spec`` may be a function, called when the operation runs: a spec that needs what an
    earlier operation made (contract addresses) is only known then.
    """
    spec = spec() if callable(spec) else spec
    have = host.get_fact(TestnetContainers, testnet=spec.testnet).get(spec.name)
    if have and have["spec"] == spec.digest():
        if have["running"]:
            host.noop(f"container {spec.name} is up to date")
            return
        yield f"docker start {spec.name}"
        return
    if have:
        yield f"docker rm -f {spec.name}"
    yield spec.run_command()


@operation()
def remove_testnet(testnet: str):  # type: ignore[no-untyped-def]
    """Remove exactly this testnet's containers, then its networks and volumes."""
    names = sorted(host.get_fact(TestnetContainers, testnet=testnet))
    networks = host.get_fact(TestnetObjects, kind="network", testnet=testnet)
    volumes = host.get_fact(TestnetObjects, kind="volume", testnet=testnet)
    if not (names or networks or volumes):
        host.noop(f"nothing of testnet {testnet} left")
        return
    if names:
        # Once more for what is left: under load the engine may give up killing one of many
        # ("did not receive an exit event") and finish it on the second call.
        mine = f"$(docker ps -aq --filter label={LABEL_TESTNET}={testnet})"
        yield f"docker rm -f -v {' '.join(names)} || docker rm -f -v {mine}"
    if networks:
        yield "docker network rm " + " ".join(networks)
    if volumes:
        yield "docker volume rm " + " ".join(volumes)
