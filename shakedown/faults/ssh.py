"""SSH to a fault target (a VM, or a VM-like container): one paramiko connection per host.

Host keys are checked: against a known_hosts file (``strict``, the default), or trusted on
first use and written to that file (``accept-new``, for hosts the caller just created).
Secrets never sit in the repository or the ledger: ``key_file`` names a file, ``password_env``
names an environment variable.

    target = SSHTarget("vm1", "10.213.0.11", key_file="~/.cache/shakedown/vm/id_ed25519",
                       known_hosts="/tmp/run/known_hosts")
    with Session(target) as s:
        print(s.check("uname -r"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from shakedown.errors import ConfigError, FaultError, UnreachableError

HOST_KEY_POLICIES = ("strict", "accept-new")


@dataclass(frozen=True)
class SSHTarget:
    """How to reach one host over SSH; ``name`` is what the inventory calls it."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    password_env: str | None = None  # the password is read from this variable, if set
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    host_key_policy: str = "strict"
    connect_timeout: float = 30.0
    sudo: bool | None = None  # run scripts with ``sudo -n``; None: when the user is not root
    key_passphrase: str | None = field(default=None, repr=False)  # from the inventory's file
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.host_key_policy not in HOST_KEY_POLICIES:
            raise ConfigError(f"{self.name}: host_key_policy {self.host_key_policy!r}; choose "
                              f"one of {', '.join(HOST_KEY_POLICIES)}")

    @classmethod
    def from_host_data(cls, name: str, data: Any) -> SSHTarget:
        """From a pyinfra host's data (``ssh_hostname``, ``ssh_port``, ``ssh_user``, ...).

        Example: ``SSHTarget.from_host_data(host.name, host.data)`` in a fault script.
        """
        def get(key: str, default: Any = None) -> Any:
            value = data.get(key) if isinstance(data, dict) else getattr(data, key, None)
            return default if value is None else value

        strict = get("ssh_strict_host_key_checking", "yes")
        return cls(
            name=name, address=get("ssh_hostname", name), port=int(get("ssh_port", 22)),
            user=get("ssh_user", "root"), key_file=get("ssh_key"),
            sudo=get("_sudo"), key_passphrase=get("ssh_key_password"),
            password_env=get("ssh_password_env"), known_hosts=get("ssh_known_hosts_file"),
            host_key_policy="accept-new" if strict == "accept-new" else "strict")

    def where(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str

    def last_error(self) -> str:
        lines = (self.err or self.out).strip().splitlines()
        return lines[-1] if lines else f"exit {self.rc}"


class Session:
    """One open SSH connection; ``run`` executes a shell script on the host."""

    def __init__(self, target: SSHTarget) -> None:
        self.target = target
        self._client: paramiko.SSHClient | None = None

    def __enter__(self) -> Session:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> paramiko.SSHClient:
        if self._client is not None and self._client.get_transport() is not None and \
                self._client.get_transport().is_active():  # type: ignore[union-attr]
            return self._client
        t = self.target
        client = paramiko.SSHClient()
        known = Path(os.path.expanduser(t.known_hosts or "~/.ssh/known_hosts"))
        if known.is_file():
            client.load_host_keys(str(known))
        if t.host_key_policy == "accept-new":
            known.parent.mkdir(parents=True, exist_ok=True)
            known.touch(exist_ok=True)
            client.load_host_keys(str(known))  # new keys are saved back to this file
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        password = os.environ.get(t.password_env) if t.password_env else None
        if t.password_env and password is None:
            raise ConfigError(f"{t.name}: environment variable {t.password_env} (its SSH "
                              "password) is not set")
        key = os.path.expanduser(t.key_file) if t.key_file else None
        if key and not os.path.isfile(key):
            raise ConfigError(f"{t.name}: SSH key file {key} does not exist")
        try:
            client.connect(t.address, port=t.port, username=t.user, key_filename=key,
                           password=password, passphrase=t.key_passphrase,
                           look_for_keys=key is None and password is None,
                           allow_agent=key is None and password is None,
                           timeout=t.connect_timeout, banner_timeout=t.connect_timeout,
                           auth_timeout=t.connect_timeout)
        except paramiko.BadHostKeyException as e:
            raise UnreachableError(f"{t.name} ({t.where()}): host key does not match "
                                   f"{known}: {e}") from e
        except paramiko.SSHException as e:
            hint = f"; add it to {known}" if "not found in known_hosts" in str(e) else ""
            raise UnreachableError(f"{t.name} ({t.where()}): {e}{hint}") from e
        except OSError as e:
            raise UnreachableError(f"{t.name} ({t.where()}): cannot connect: {e}") from e
        if t.host_key_policy == "accept-new":
            client.save_host_keys(str(known))
        self._client = client
        return client

    def run(self, script: str, *, timeout: float = 120.0) -> Result:
        """Run ``script`` with ``/bin/sh -s`` (the script on stdin; under ``sudo -n`` for a user
        other than root); never raises on exit code."""
        sudo = self.target.sudo if self.target.sudo is not None else self.target.user != "root"
        command = "sudo -n /bin/sh -s" if sudo else "/bin/sh -s"
        try:
            try:
                stdin, stdout, stderr = self._exec(command, timeout)
            except (paramiko.SSHException, OSError):
                # Nothing ran yet (the channel never opened), so one retry on a fresh
                # connection is safe; a busy host's sshd sometimes misses a channel request.
                self.close()
                stdin, stdout, stderr = self._exec(command, timeout)
            stdin.write(script)
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            rc = stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as e:
            self.close()
            raise UnreachableError(f"{self.target.name} ({self.target.where()}): "
                                   f"{type(e).__name__}: {e}") from e
        return Result(rc, out, err)

    def _exec(self, command: str, timeout: float) -> tuple[Any, Any, Any]:
        return self.connect().exec_command(command, timeout=timeout)

    def check(self, script: str, *, timeout: float = 120.0) -> str:
        """Run ``script``; its stdout, or FaultError naming the host and the last error line."""
        result = self.run(script, timeout=timeout)
        if result.rc != 0:
            raise FaultError(f"{self.target.name}: {result.last_error()}")
        return result.out

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def read_hosts(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, data)`` of every host of a pyinfra inventory file, as pyinfra's own
    ``Inventory`` resolves them (group data merged; ``@vagrant/...`` hosts get their address,
    user and key from ``vagrant ssh-config``). pyinfra's CLI module is not imported: it
    monkey-patches."""
    import runpy

    from pyinfra.api import Inventory

    try:
        names = runpy.run_path(str(path))
        groups = {k: v if isinstance(v, tuple) else (v, {}) for k, v in names.items()
                  if not k.startswith("_") and isinstance(v, list | tuple)}
        hosts = [h for members, _ in groups.values() for h in members]
        inventory = Inventory((hosts, {}), **groups)
    except Exception as e:  # a bad file, or a connector that failed (vagrant not running)
        raise ConfigError(f"inventory {path}: {type(e).__name__}: {e}") from e
    from shakedown.model import with_group_roles

    seen: dict[str, dict[str, Any]] = {}
    for host in inventory:  # roles may come from groups named after them, as in the deploy
        seen.setdefault(host.name, with_group_roles(host.data.dict(), host.groups))
    return list(seen.items())


def targets_from_inventory(path: str | os.PathLike[str]) -> list[SSHTarget]:
    """SSH targets of every host of a pyinfra inventory file (see ``read_hosts``).

    Example: ``Injector.on_hosts("staging", targets_from_inventory("inventories/staging.py"),
    d)``.
    """
    return [SSHTarget.from_host_data(name, data) for name, data in read_hosts(path)]
