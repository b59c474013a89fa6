"""The Docker executor's steps: a plan's steps (``shakedown.faults.kind``) run on this host.

``sh`` runs in a container's network namespace with this host's tools (nsenter), services are
containers (the Docker API), toxics go to the toxiproxy API, chain calls to the RPC. A ledger
stores undo steps as this data, so whoever reads it (the CLI after a crash, the detached TTL
process) can heal with nothing else. Every undo is idempotent and "already gone" counts as
done; an undo that leaves the service not running says so. Step names of ledgers written
before the one fault model (``container``, ``netns_sh``, ``iptables_remove``, ``tc_clear``,
``clock_restore``) still run.

    run_step({"op": "service", "at": "sd-node-200", "action": "unpause"}, undo=True)
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from functools import cache
from typing import Any

import docker
import docker.errors

from shakedown.errors import FaultError, NotFoundError
from shakedown.faults import netshell
from shakedown.faults.names import TC_HANDLE
from shakedown.toxiproxy import ToxiproxyClient

OPS: dict[str, Callable[..., None]] = {}
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
CLOCK_LABEL = "shakedown.fault.clock"


def op(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        for name in names or (fn.__name__,):
            OPS[name] = fn
        return fn
    return register


def run_step(step: dict[str, Any], undo: bool = False) -> None:
    """Run one step; FaultError with one line when it cannot be done. An undo ``sh`` in a
    container that is gone has nothing left to undo (its namespace went with it)."""
    args = dict(step)
    name = args.pop("op")
    if name not in OPS:
        raise FaultError(f"unknown fault step {name!r} (ledger written by a newer shakedown?)")
    try:
        OPS[name](**args)
    except NotRunning:
        if not undo or name not in ("sh", "netns_sh"):
            raise


@cache
def engine() -> docker.DockerClient:
    return docker.from_env(timeout=60)


class NotRunning(FaultError):
    """The container is absent or stopped: its network namespace is gone with it."""


# --- network namespaces ----------------------------------------------------------------------

def container_pid(name: str) -> int:
    try:
        c = engine().containers.get(name)
    except docker.errors.NotFound:
        raise NotRunning(f"container {name} does not exist") from None
    pid = int(c.attrs["State"]["Pid"] or 0)
    if c.status != "running" or not pid:
        raise NotRunning(f"container {name} is {c.status}, so its network namespace is gone")
    return pid


def in_netns(name: str, argv: list[str], ok: tuple[int, ...] = (0,), *, pid: int = 0,
             stdin: str | None = None) -> str:
    """Run a host binary (iptables, tc, sh) inside container ``name``'s network namespace."""
    cmd = ["nsenter", "-t", str(pid or container_pid(name)), "-n", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, input=stdin)
    if proc.returncode not in ok:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        what = " ".join(argv) if argv[0] != "/bin/sh" else "shell"
        raise FaultError(f"{name}: {err[-1] if err else f'{what}: exit {proc.returncode}'}")
    return proc.stdout


@op("sh")
def sh(at: str, cmd: str, precheck: str = "") -> None:
    """A plan's shell (``netshell``) in the namespace of container ``at``; a precheck that
    refuses (exit 3) stops it before anything changes."""
    in_netns(at, ["/bin/sh", "-c", f"{precheck}\n{cmd}" if precheck else cmd])


@op("netns_sh")
def _netns_sh(container: str, script: str, missing_ok: bool = False) -> None:
    try:
        sh(container, script)
    except NotRunning:
        if not missing_ok:
            raise


@op("iptables_remove")
def _iptables_remove(container: str, tag: str) -> None:
    _netns_sh(container, netshell.ipt_remove(tag), missing_ok=True)


@op("tc_clear")
def _tc_clear(container: str, device: str) -> None:
    _netns_sh(container, f"if tc qdisc show dev {device} root | grep -q ' {TC_HANDLE} '; then "
              f"tc qdisc del dev {device} root; fi", missing_ok=True)


# --- toxiproxy -------------------------------------------------------------------------------

@op()
def toxic_add(api: str, proxy: str, name: str, type: str, stream: str, toxicity: float,
              attributes: dict[str, Any], at: str = "") -> None:
    ToxiproxyClient(api).add_toxic(proxy, type, name=name, stream=stream, toxicity=toxicity,
                                   attributes=attributes)


@op()
def toxic_remove(api: str, proxy: str, name: str, at: str = "") -> None:
    try:
        ToxiproxyClient(api).remove_toxic(proxy, name, missing_ok=True)
    except NotFoundError:  # the proxy itself is gone (testnet torn down): nothing to undo
        pass


# --- containers ------------------------------------------------------------------------------

@op("service")
def service(at: str, action: str, unit: str = "") -> None:
    """stop, start, kill (SIGKILL), pause, unpause or restart container ``at``; after start
    or unpause it must be running (else FaultError: the service was not healed)."""
    try:
        c = engine().containers.get(at)
    except docker.errors.NotFound:
        if action in ("start", "unpause"):
            return  # undoing on a removed container: nothing left to heal
        raise NotRunning(f"container {at} does not exist") from None
    status = c.status
    if action == "start" and status == "paused":
        c.unpause()
    elif action == "start" and status != "running":
        c.start()
    elif action == "unpause" and status == "paused":
        c.unpause()
    elif action == "stop" and status in ("running", "paused", "restarting"):
        c.stop(timeout=5)
    elif action == "kill" and status in ("running", "restarting"):
        c.kill(signal="SIGKILL")
    elif action == "pause" and status == "running":
        c.pause()
    elif action == "restart":
        c.restart(timeout=5)
    elif action not in ("start", "unpause", "stop", "kill", "pause"):
        raise FaultError(f"container {at}: unknown action {action!r}")
    if action in ("start", "unpause"):
        _must_run(at)


@op("container")
def _container(name: str, action: str) -> None:
    service(name, action)


def _must_run(name: str) -> None:
    c = engine().containers.get(name)
    if c.status not in ("running", "restarting"):
        raise FaultError(f"container {name} is {c.status} after the undo; start it by hand "
                         f"(docker start {name}) and look at its logs")


@op()
def remove_container(name: str) -> None:
    try:
        engine().containers.get(name).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass


@op()
def proxy_remove(api: str, proxy: str) -> None:
    try:
        ToxiproxyClient(api).delete_proxy(proxy, missing_ok=True)
    except NotFoundError:
        pass


# --- clock skew: the original container kept aside, a skewed twin in its place ---------------

def aside(name: str) -> str:
    return f"{name}-clock-orig"


@op()
def clock(at: str, offset_s: float, unit: str = "") -> None:
    """Replace container ``at`` with a twin whose processes see the clock ``offset_s`` off.

    The original is renamed aside while it still runs, and only then stopped, so at every
    point a crash can leave, ``unclock`` finds either the original under its own name or
    under the aside name, and puts it back running."""
    client = engine()
    try:
        original = client.containers.get(aside(at))
        _remove(at)  # an earlier skew: its twin is replaced
    except docker.errors.NotFound:
        original = client.containers.get(at)
        original.rename(aside(at))
    original.stop(timeout=5)
    original.reload()
    twin = _twin(original, at, {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": f"{offset_s:+g}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timers and timeouts keep real time
    })
    twin.start()


@op("unclock", "clock_restore")
def unclock(at: str = "", unit: str = "", name: str = "") -> None:
    """Put the original container back and running, whatever point ``clock`` reached."""
    at = at or name
    client = engine()
    try:
        original = client.containers.get(aside(at))
    except docker.errors.NotFound:
        service(at, "start")  # never renamed: it only has to run
        return
    _remove(at)
    original.rename(at)
    service(at, "start")


def _remove(name: str) -> None:
    try:
        engine().containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def _twin(original: Any, name: str, extra_env: dict[str, str]) -> Any:
    """A new container made like ``original`` (image, command, env, ports, network, alias)."""
    config, host = original.attrs["Config"], original.attrs["HostConfig"]
    env = [e for e in config.get("Env") or [] if e.split("=", 1)[0] not in extra_env]
    env += [f"{k}={v}" for k, v in extra_env.items()]
    ports = {
        port: (bindings[0]["HostIp"], int(bindings[0]["HostPort"]))
        for port, bindings in (host.get("PortBindings") or {}).items() if bindings
    }
    networks = original.attrs["NetworkSettings"]["Networks"]
    network = next(iter(networks))
    service_name = config["Labels"].get("shakedown.service") or name
    client = engine()
    endpoint = client.api.create_endpoint_config(aliases=[service_name])
    return client.containers.create(
        config["Image"], command=config.get("Cmd"), entrypoint=config.get("Entrypoint"),
        environment=env, name=name, hostname=config.get("Hostname"), ports=ports,
        labels={**config["Labels"], CLOCK_LABEL: extra_env.get("FAKETIME", "")},
        restart_policy=host.get("RestartPolicy"), network=network,
        networking_config={network: endpoint}, working_dir=config.get("WorkingDir") or None,
    )


# --- chain RPC -------------------------------------------------------------------------------

@op()
def rpc(url: str, method: str, params: list[Any], at: str = "") -> None:
    call(url, method, params)


def call(url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call; its result, or FaultError with the node's message."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
    except OSError as e:
        raise FaultError(f"chain {url}: {method} failed: {e}") from e
    if "error" in reply:
        raise FaultError(f"chain {url}: {method}: {reply['error'].get('message')}")
    return reply.get("result")


@op()
def reorg(url: str, depth: int, keep_txs: bool, at: str = "") -> None:
    """Replace the last ``depth`` blocks. With ``keep_txs`` their transactions are mined
    again in the new blocks (as after a real short reorg); without, they are lost."""
    head = int(call(url, "eth_blockNumber", []), 16)
    if depth > head:
        raise FaultError(f"reorg depth {depth}: the chain has only {head} blocks")
    pairs = []
    for offset in range(depth if keep_txs else 0):
        block = call(url, "eth_getBlockByNumber", [hex(head - depth + 1 + offset), False])
        for tx in block["transactions"]:
            pairs.append([call(url, "eth_getRawTransactionByHash", [tx]), offset])
    call(url, "anvil_reorg", [depth, pairs])


# --- membership (churn) ----------------------------------------------------------------------

@op()
def canonical(rpc_url: str, contracts: dict[str, str], node_id: int, member: bool) -> None:
    """Add ``node_id`` to the canonical network or remove it; no change when already so."""
    from shakedown.chain.ops import Chain
    from shakedown.chain.records import ContractAddresses
    from shakedown.keys import admin_account

    chain = Chain.connect(rpc_url, ContractAddresses.from_dict(contracts), admin_account())
    if (node_id in chain.canonical_node_ids()) == member:
        return
    if member:
        chain.add_to_network(node_id)
    else:
        chain.remove_from_network(node_id)
