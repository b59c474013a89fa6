"""A local anvil chain as a child process, for tests and the local path.

Configure first, act in ``start()``; the context manager stops the process even when start
fails. anvil runs with ``--quiet`` because its banner prints every account's private key; its
errors still reach the log file, whose tail a failed start reports.

    with AnvilProcess() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from shakedown.errors import ConfigError, TimeoutExpired, UnreachableError
from shakedown.keys import ANVIL_ACCOUNT_COUNT, ANVIL_MNEMONIC
from shakedown.ports import free_port, port_is_free

REPO_ROOT = Path(__file__).resolve().parents[2]
PINNED_ANVIL = REPO_ROOT / "tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
CHAIN_ID = 31337


def anvil_binary() -> Path:
    """env SHAKEDOWN_ANVIL, else the pinned npm binary under tools/."""
    path = Path(os.environ.get("SHAKEDOWN_ANVIL") or PINNED_ANVIL)
    if not os.access(path, os.X_OK):
        raise ConfigError(
            f"anvil not found or not executable at {path}; "
            "run `npm ci` in tools/ or set SHAKEDOWN_ANVIL"
        )
    return path


class _PortTaken(UnreachableError):
    """anvil could not bind its port."""


class AnvilProcess:
    """anvil on 127.0.0.1, chain id 31337, the well-known accounts of shakedown.keys funded."""

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = CHAIN_ID,
        accounts: int = ANVIL_ACCOUNT_COUNT,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.chain_id = chain_id
        self.accounts = accounts
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        if self.port is None or self._proc is None:
            raise UnreachableError("anvil: not started; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> AnvilProcess:
        """Start anvil and wait until it answers eth_chainId; a second start is refused.

        A port picked here may be taken by someone else before anvil binds it; then anvil
        is retried on a fresh port (a port given by the caller is not retried).
        """
        if self._proc is not None:
            raise ConfigError(f"anvil: already running on port {self.port}")
        binary = anvil_binary()
        chosen = self.port
        for attempt in range(3):
            self.port = chosen or free_port(self.host)
            try:
                self._spawn(binary)
                self._wait_ready()
                return self
            except _PortTaken:
                self.stop()
                if chosen is not None or attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _spawn(self, binary: Path) -> None:
        # Whoever holds the port would answer the readiness probe in anvil's stead.
        if not port_is_free(self.host, self.port):
            raise _PortTaken(f"anvil: port {self.host}:{self.port} is already in use")
        fd, log = tempfile.mkstemp(prefix=f"anvil-{self.port}-", suffix=".log")
        self._log_path = Path(log)
        args = [
            str(binary),
            "--quiet",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--mnemonic",
            ANVIL_MNEMONIC,
            *self.extra_args,
        ]
        with os.fdopen(fd, "wb") as out:
            self._proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "nothing yet"
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                error = _PortTaken if "Address already in use" in tail else UnreachableError
                raise error(
                    f"anvil exited with code {code} before answering on port "
                    f"{self.port}; log tail: {tail}"
                )
            try:
                chain_id = self._rpc("eth_chainId")
                if int(chain_id, 16) == self.chain_id:
                    return
                last = f"chain id {chain_id}"
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        raise TimeoutExpired(
            f"anvil on port {self.port} did not answer eth_chainId within "
            f"{self.startup_timeout:.0f}s; last seen: {last}; log tail: {self.log_tail()}"
        )

    def _rpc(self, method: str) -> str:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.load(response)["result"]

    def log_tail(self, lines: int = 5) -> str:
        """The last lines anvil wrote, joined by " | " (keys never appear: --quiet)."""
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        tail = self._log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(tail) or "(empty)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (then kill) anvil and remove its log; harmless when not running."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        atexit.unregister(self.stop)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
