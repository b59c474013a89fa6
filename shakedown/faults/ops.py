"""Fault steps as data: ``{"op": "toxic_remove", "api": ..., ...}`` run by name.

A ledger stores the undo steps of every fault this way, so whoever reads the ledger (the CLI
after a crash, the detached TTL process) can heal with nothing else. Every step is
idempotent and "already gone" counts as done: removing a toxic that is not there, unpausing
a running container, deleting rules from a namespace whose container has exited.

    run_step({"op": "container", "name": "sd-node-200", "action": "unpause"})
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
from shakedown.faults.names import IPTABLES_CHAIN, TC_HANDLE
from shakedown.toxiproxy import ToxiproxyClient

OPS: dict[str, Callable[..., None]] = {}
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
CLOCK_LABEL = "shakedown.fault.clock"


def op(fn: Callable[..., None]) -> Callable[..., None]:
    OPS[fn.__name__] = fn
    return fn


def run_step(step: dict[str, Any]) -> None:
    """Run one step; raises FaultError with one line when it cannot be done."""
    args = dict(step)
    name = args.pop("op")
    if name not in OPS:
        raise FaultError(f"unknown fault step {name!r} (ledger written by a newer shakedown?)")
    OPS[name](**args)


@cache
def engine() -> docker.DockerClient:
    return docker.from_env(timeout=60)


class NotRunning(FaultError):
    """The container is absent or stopped: its network namespace is gone with it."""


# --- toxiproxy -------------------------------------------------------------------------------

@op
def toxic_add(api: str, proxy: str, name: str, type: str, stream: str, toxicity: float,
              attributes: dict[str, Any]) -> None:
    ToxiproxyClient(api).add_toxic(proxy, type, name=name, stream=stream, toxicity=toxicity,
                                   attributes=attributes)


@op
def toxic_remove(api: str, proxy: str, name: str) -> None:
    try:
        ToxiproxyClient(api).remove_toxic(proxy, name, missing_ok=True)
    except NotFoundError:  # the proxy itself is gone (testnet torn down): nothing to undo
        pass


# --- containers ------------------------------------------------------------------------------

@op
def container(name: str, action: str) -> None:
    """stop, start, kill (SIGKILL), pause, unpause or restart one container."""
    try:
        c = engine().containers.get(name)
    except docker.errors.NotFound:
        if action in ("start", "unpause"):
            return  # undoing on a removed container: nothing left to heal
        raise NotRunning(f"container {name} does not exist") from None
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
        raise FaultError(f"container {name}: unknown action {action!r}")


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
    """Run a host binary (iptables, tc, conntrack) inside container ``name``'s netns."""
    cmd = ["nsenter", "-t", str(pid or container_pid(name)), "-n", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, input=stdin)
    if proc.returncode not in ok:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise FaultError(f"{name}: {' '.join(argv)}: {err[-1] if err else proc.returncode}")
    return proc.stdout


# --- iptables: our chain, our comments -------------------------------------------------------

_JUMPS = (["INPUT", "!", "-i", "lo"], ["OUTPUT", "!", "-o", "lo"])
_IPT = ["iptables", "-w", "5"]


def _comment(tag: str) -> list[str]:
    return ["-m", "comment", "--comment", f"sd-{tag}"]


@op
def iptables_add(container: str, tag: str, rules: list[list[str]]) -> None:
    """Append ``rules`` (match + target) to our chain, jumped to from INPUT and OUTPUT.

    One ``iptables-restore --noflush`` adds the jumps and rules at once (a fault takes
    effect in one step, and quickly); open flows are flushed so they meet the rules."""
    pid = container_pid(container)
    in_netns(container, [*_IPT, "-N", IPTABLES_CHAIN], ok=(0, 1), pid=pid)  # 1: exists
    have = in_netns(container, [*_IPT, "-S"], pid=pid)
    lines = ["*filter"]
    for hook in _JUMPS:
        jump = f"-A {hook[0]} {' '.join(hook[1:])} -j {IPTABLES_CHAIN}"
        if jump not in have.splitlines():
            lines.append(f"-I {hook[0]} 1 {' '.join(hook[1:])} -j {IPTABLES_CHAIN}")
    lines += [" ".join(["-A", IPTABLES_CHAIN, *rule, *_comment(tag)]) for rule in rules]
    lines.append("COMMIT")
    in_netns(container, ["iptables-restore", "-w", "5", "--noflush"], pid=pid,
             stdin="\n".join(lines) + "\n")
    in_netns(container, ["conntrack", "-F"], ok=(0, 1), pid=pid)


@op
def iptables_remove(container: str, tag: str) -> None:
    """Delete the rules tagged ``tag``; drop our chain and its jumps once it is empty."""
    try:
        pid = container_pid(container)
    except NotRunning:
        return
    listing = in_netns(container, [*_IPT, "-S", IPTABLES_CHAIN], ok=(0, 1), pid=pid)
    ours = [ln for ln in listing.splitlines() if ln.startswith(f"-A {IPTABLES_CHAIN} ")]
    mine = [ln for ln in ours if f"--comment sd-{tag}" in ln or f'--comment "sd-{tag}"' in ln]
    lines = ["*filter", *("-D" + ln[2:] for ln in mine)]
    if len(mine) == len(ours) and f"-N {IPTABLES_CHAIN}" in listing:
        have = in_netns(container, [*_IPT, "-S"], pid=pid).splitlines()
        lines += [f"-D {h[0]} {' '.join(h[1:])} -j {IPTABLES_CHAIN}" for h in _JUMPS
                  if f"-A {h[0]} {' '.join(h[1:])} -j {IPTABLES_CHAIN}" in have]
        lines.append(f"-X {IPTABLES_CHAIN}")
    if len(lines) > 1:
        in_netns(container, ["iptables-restore", "-w", "5", "--noflush"], pid=pid,
                 stdin="\n".join([*lines, "COMMIT"]) + "\n")


# --- tc: a root qdisc with our handle --------------------------------------------------------

@op
def tc_root(container: str, device: str, qdisc: list[str]) -> None:
    """Install ``qdisc`` (``["tbf", "rate", "1mbit", ...]``) as the root qdisc, our handle."""
    in_netns(container, ["tc", "qdisc", "replace", "dev", device, "root", "handle", TC_HANDLE,
                         *qdisc])


@op
def netns_sh(container: str, script: str, missing_ok: bool = False) -> None:
    """Run a shell script (``shakedown.faults.tcshell``'s) in the container's netns with this
    host's tools; ``missing_ok``: a container without a namespace has nothing left to undo."""
    try:
        in_netns(container, ["/bin/sh", "-c", script])
    except NotRunning:
        if not missing_ok:
            raise


@op
def tc_clear(container: str, device: str) -> None:
    """Delete the root qdisc only when it carries our handle."""
    try:
        shown = in_netns(container, ["tc", "qdisc", "show", "dev", device, "root"], ok=(0, 1))
    except NotRunning:
        return
    if f" {TC_HANDLE} " in f" {shown} ":
        in_netns(container, ["tc", "qdisc", "del", "dev", device, "root"], ok=(0, 2))


# --- chain RPC -------------------------------------------------------------------------------

@op
def rpc(url: str, method: str, params: list[Any]) -> None:
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


@op
def reorg(url: str, depth: int, keep_txs: bool) -> None:
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


# --- clock skew: the original container kept aside, a skewed twin in its place ---------------

def _aside(name: str) -> str:
    return f"{name}-clock-orig"


@op
def clock_skew(name: str, offset_s: float) -> None:
    """Replace container ``name`` with a twin whose processes see the clock ``offset_s`` off."""
    client = engine()
    try:
        original = client.containers.get(_aside(name))
        client.containers.get(name).remove(force=True)  # an earlier skew: replace it
    except docker.errors.NotFound:
        original = client.containers.get(name)
        original.stop(timeout=5)
        original.rename(_aside(name))
    original.reload()
    twin = _twin(original, name, {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": f"{offset_s:+g}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timers and timeouts keep real time
    })
    twin.start()


@op
def clock_restore(name: str) -> None:
    """Put the original container back; harmless when it never left."""
    client = engine()
    try:
        original = client.containers.get(_aside(name))
    except docker.errors.NotFound:
        return
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    original.rename(name)
    original.start()


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
    service = config["Labels"].get("shakedown.service") or name
    client = engine()
    endpoint = client.api.create_endpoint_config(aliases=[service])
    return client.containers.create(
        config["Image"], command=config.get("Cmd"), entrypoint=config.get("Entrypoint"),
        environment=env, name=name, hostname=config.get("Hostname"), ports=ports,
        labels={**config["Labels"], CLOCK_LABEL: extra_env.get("FAKETIME", "")},
        restart_policy=host.get("RestartPolicy"), network=network,
        networking_config={network: endpoint}, working_dir=config.get("WorkingDir") or None,
    )


# --- membership (churn) ----------------------------------------------------------------------

@op
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


@op
def remove_container(name: str) -> None:
    try:
        engine().containers.get(name).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass


@op
def proxy_remove(api: str, proxy: str) -> None:
    try:
        ToxiproxyClient(api).delete_proxy(proxy, missing_ok=True)
    except NotFoundError:
        pass
