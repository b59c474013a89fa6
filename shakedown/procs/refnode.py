"""refnode nodes and gateways as local processes, for tests and benchmarks without Docker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from shakedown.client import GatewayClient, NodeClient
from shakedown.ports import free_port
from shakedown.waiting import GiveUp, wait_for


class _Service(ABC):
    """A Python module run as a child process, ready when ``probe`` answers."""

    module = ""
    name = ""

    def __init__(self, env: dict[str, str], port: int, logdir: Path | None = None):
        self.port = port
        self.env = {**os.environ, **env}
        self.logdir = logdir or Path(tempfile.mkdtemp(prefix="shakedown-"))
        self.logfile = self.logdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @abstractmethod
    def probe(self) -> object:
        """Answer if the service is ready; raise if not."""

    def start(self, wait: bool = True, timeout: float = 60) -> _Service:
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", self.module], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def probe() -> object:
            if self.proc is None or self.proc.poll() is not None:
                raise GiveUp(f"{self.name} exited; log tail: {self.log_tail()}")
            return self.probe()
        wait_for(probe, lambda _: True, timeout=timeout, what=f"{self.name} ready")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, as in a crash."""
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, timeout: float = 10) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, wait: bool = True) -> None:
        self.stop()
        self.start(wait=wait)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.logfile.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> _Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RefnodeProcess(_Service):
    module = "refnode.node"

    def __init__(self, *, name: str, signer_key: str, db_dsn: str, chain_rpc: str,
                 node_registry: str, rate_registry: str, port: int | None = None,
                 extra_env: dict[str, str] | None = None, logdir: Path | None = None):
        self.name = name
        port = port or free_port()
        env = {"REFNODE_SIGNER_KEY": signer_key, "REFNODE_DB_DSN": db_dsn,
               "REFNODE_CHAIN_RPC": chain_rpc, "REFNODE_NODE_REGISTRY": node_registry,
               "REFNODE_RATE_REGISTRY": rate_registry, "REFNODE_LISTEN": f"127.0.0.1:{port}",
               "REFNODE_REGISTRY_REFRESH_S": "0.5", **(extra_env or {})}
        super().__init__(env, port, logdir)

    def client(self) -> NodeClient:
        return NodeClient(self.endpoint)

    def probe(self) -> object:
        with self.client() as client:
            return client.health()


class GatewayProcess(_Service):
    module = "refnode.gateway"

    def __init__(self, *, name: str, payer_key: str, chain_rpc: str, node_registry: str,
                 port: int | None = None, logdir: Path | None = None):
        self.name = name
        port = port or free_port()
        env = {"GATEWAY_PAYER_KEY": payer_key, "GATEWAY_CHAIN_RPC": chain_rpc,
               "GATEWAY_NODE_REGISTRY": node_registry, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
               "GATEWAY_REGISTRY_REFRESH_S": "0.5"}
        super().__init__(env, port, logdir)

    def client(self) -> GatewayClient:
        return GatewayClient(self.endpoint)

    def probe(self) -> object:
        with self.client() as client:
            return client.health()


