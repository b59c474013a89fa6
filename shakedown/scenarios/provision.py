"""A fresh, isolated testnet per run: its inventory, deploy, logs, extra gateways, teardown.

Each run writes its own inventory into the run directory (a new testnet name ``sds-...``, a
free block of host ports, images pinned), deploys it with pyinfra like ``shakedown up``, and
removes exactly what carries its label at the end, like ``shakedown down``.

    net = RunTestnet.create(scenario.topology, run_dir, images)
    net.deploy(verbose=False)
    ...
    net.teardown(timeout_s=120)
"""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shakedown.deploy.docker import LABEL_SERVICE, LABEL_TESTNET
from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, NotFoundError, UnreachableError
from shakedown.model import GATEWAY_PORT, Testnet, load_inventory
from shakedown.ports import free_port_base
from shakedown.scenarios.api import Topology

NAME_PREFIX = "sds"


def testnet_name(scenario: str) -> str:
    """``sds-<scenario, shortened>-<6 hex>``: unique, and at most 31 characters."""
    return f"{NAME_PREFIX}-{scenario[:20].rstrip('-')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunTestnet:
    """One run's testnet: the inventory file it was deployed from and its model."""

    inventory: Path
    data: dict[str, Any]

    @property
    def model(self) -> Testnet:
        return load_inventory(self.inventory)[0]

    @property
    def name(self) -> str:
        return str(self.data["testnet"])

    @property
    def record_path(self) -> Path:
        return Path(self.data["record_path"])

    def record(self) -> dict[str, Any]:
        found = load_record(self.record_path)
        if found is None:
            raise NotFoundError(f"{self.name}: no deployment record at {self.record_path}")
        return found

    @classmethod
    def create(cls, scenario: str, topology: Topology, run_dir: Path,
               images: dict[str, str]) -> RunTestnet:
        """Write the run's inventory (validated through the model) into ``run_dir``."""
        if not 0 <= topology.gateways <= 1:
            raise ConfigError(f"{scenario}: topology.gateways {topology.gateways}: deploy 0 or 1;"
                              " add more with AddGateway actions")
        name = testnet_name(scenario)
        data: dict[str, Any] = {
            "testnet": name, "roles": ["chain", "proxy", "db", "node", "gateway"],
            "nodes": topology.nodes, "gateways": topology.gateways,
            "port_base": free_port_base(topology.nodes),
            "record_path": str(run_dir / "deployment.json"),
            "images": {**images, **dict(topology.images)},
        }
        if topology.node_env:
            data["node_env"] = {int(k): dict(v) for k, v in topology.node_env.items()}
        inventory = run_dir / "inventory.py"
        run_dir.mkdir(parents=True, exist_ok=True)
        net = cls(inventory, data).written(scenario)
        net.model  # noqa: B018 - validates: a bad topology fails here with one line
        return net

    def written(self, scenario: str) -> RunTestnet:
        """Write the inventory file from ``data`` (at create, and when an action edits it)."""
        self.inventory.write_text(f'"""Inventory of scenario {scenario}: testnet {self.name}."""'
                                  f"\n\ndocker_hosts = [('@local', {self.data!r})]\n")
        return self

    def deploy(self, verbose: bool = False) -> str:
        """Preflight (engine, images, ports), then pyinfra deploy/testnet.py; its summary."""
        from shakedown.deploy.preflight import preflight
        from shakedown.deploy.runner import run_pyinfra

        preflight([self.model], ports=True)
        return run_pyinfra(self.inventory, "testnet.py", verbose)

    def teardown(self, timeout_s: float, verbose: bool = False) -> str:
        """pyinfra deploy/teardown.py in its own session (a Ctrl-C does not cut it short)."""
        from shakedown.deploy.runner import run_pyinfra

        return run_pyinfra(self.inventory, "teardown.py", verbose, timeout_s=timeout_s,
                           new_session=True)

    def containers(self) -> list[str]:
        """Names of every container carrying this testnet's label."""
        out = _docker("ps", "-a", "--filter", f"label={LABEL_TESTNET}={self.name}",
                      "--format", "{{.Names}}", timeout=30)
        return sorted(line for line in out.splitlines() if line.strip())

    def collect_logs(self, dest: Path) -> list[Path]:
        """``docker logs`` of every container of the testnet into ``dest/<container>.log``."""
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.containers():
            path = dest / f"{name.removeprefix(self.name + '-')}.log"
            with path.open("wb") as fh:
                subprocess.run(["docker", "logs", "--timestamps", name], stdout=fh,
                               stderr=subprocess.STDOUT, timeout=60, check=False)
            written.append(path)
        return written

    def reap(self) -> list[str]:
        """Force-remove whatever still carries the label (after a failed teardown)."""
        left = self.containers()
        if left:
            _docker("rm", "-f", "-v", *left, timeout=120)
        for kind in ("network", "volume"):
            names = _docker(kind, "ls", "-q", "--filter", f"label={LABEL_TESTNET}={self.name}",
                            timeout=30).split()
            if names:
                _docker(kind, "rm", *names, timeout=60)
        return left

    # --- gateways beyond the deployed one ---------------------------------------------------

    def start_gateway(self, name: str, index: int, host_port: int) -> str:
        """Run gateway ``name`` with the ``index``-th gateway key; returns its host endpoint."""
        from shakedown.deploy.gateway import gateway_spec
        from shakedown.deploy.images import images_for
        from shakedown.keys import gateway as gateway_key
        from shakedown.keys import key_hex

        model = self.model
        spec = dataclasses.replace(
            gateway_spec(model, images_for(model)), service=name,
            secret_env=(("GATEWAY_PAYER_KEY", key_hex(gateway_key(index))),),
            ports=((host_port, GATEWAY_PORT),))
        args = ["run", "-d", "--restart", "unless-stopped", "--name", spec.name,
                "--hostname", name, "--network", spec.network, "--network-alias", name,
                "--label", f"{LABEL_TESTNET}={self.name}", "--label", f"{LABEL_SERVICE}={name}",
                "-p", f"127.0.0.1:{host_port}:{GATEWAY_PORT}"]
        for key, value in (*spec.env, *spec.secret_env):
            args += ["-e", f"{key}={value}"]
        _docker(*args, spec.image, *spec.command, timeout=60, secret=True)
        return f"127.0.0.1:{host_port}"

    def remove_gateway(self, name: str) -> None:
        _docker("rm", "-f", f"{self.name}-{name}", timeout=60)


def _docker(*args: str, timeout: float, secret: bool = False) -> str:
    """Run the docker CLI; raise UnreachableError with its first error line (never the args of
    a ``secret`` call: they hold a key)."""
    try:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        what = args[0] if secret else " ".join(args[:3])
        raise UnreachableError(f"docker {what}: no answer within {timeout:g}s") from e
    if proc.returncode != 0:
        what = args[0] if secret else " ".join(args[:3])
        first = (proc.stderr.strip().splitlines() or ["failed"])[0]
        raise UnreachableError(f"docker {what}: {first}")
    return proc.stdout
