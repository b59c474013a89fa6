"""Node operations that stay done: a node joins for good, leaves for good, or is redeployed
with a setting changed. Unlike faults they are never healed; each returns the facts the
history keeps with the action's completion.

Why not the ``churn-add`` / ``churn-remove`` faults: a fault is always removable, and the final
heal removes it (the newcomer leaves again, the leaver comes back) before the checks run.

    At(6, NodeJoin("node-400", REFNODE_REPORT_INTERVAL_S="2"))
    At(14, NodeLeave("node-300"))
    At(8, NodeEnv("node-300", REFNODE_SYNC_ENABLED="1"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import docker

from refnode.envelopes import Signer
from refnode.proto import refnode_pb2 as pb
from shakedown.client import NodeClient, payer_envelopes
from shakedown.errors import ConfigError, ShakedownError, TimeoutExpired
from shakedown.keys import payer
from shakedown.model import NODE_PORT
from shakedown.scenarios.actions import chain_of
from shakedown.scenarios.api import Action
from shakedown.traffic import NodeTarget
from shakedown.waiting import wait_for

if TYPE_CHECKING:
    from shakedown.scenarios.driver import Driver

DRAIN_S = 30.0       # a leaver's envelopes reach the others within this, or the leave fails
UNFOLLOW_S = 15.0    # the others stop following a leaver within this (membership refresh: 2 s)
AFTER_LEAVE = 20     # envelopes published to the leaver once it has left


def perform(driver: Driver, action: Action) -> dict[str, Any]:
    """Run one node action (``api.NODE_ACTIONS``) on the driver's testnet."""
    ops: dict[str, Callable[[Driver, Action], dict[str, Any]]] = {
        "node-join": join, "node-leave": leave, "node-env": reconfigure}
    return ops[action.kind](driver, action)


def _env(action: Action) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(action.params.get("env") or {}).items()}


def _entry(driver: Driver, name: str) -> dict[str, Any]:
    for node in driver.record["nodes"]:
        if node["name"] == name:
            return dict(node)
    raise ConfigError(f"no node {name!r} in this run; nodes: "
                      f"{', '.join(n['name'] for n in driver.record['nodes'])}")


# --- join --------------------------------------------------------------------------------------

def join(driver: Driver, action: Action) -> dict[str, Any]:
    """Register the next node with a fresh identity, give it a database, start it, make it
    canonical; from then on the run samples it, checks it, and workload items may name it."""
    from shakedown.faults import churn

    testnet = driver.net.model
    node = churn.next_node(testnet, driver.record)
    if node.name != action.target:
        raise ShakedownError(f"node-join: the registry's next node is {node.name}, not "
                             f"{action.target}")
    node = dataclasses.replace(node, env=tuple(sorted(_env(action).items())))
    churn.add_node(testnet, driver.record, node)
    grpc = _published(testnet.container(node.name))
    dsn = driver.record["db"]["dsn"].rsplit("/", 1)[0] + f"/{node.database}"
    driver.record["nodes"].append({"node_id": node.node_id, "name": node.name, "grpc": grpc,
                                   "dsn": dsn, "container": testnet.container(node.name)})
    driver.probe.watch(node.name, dsn)
    driver.router.add_node(node.name, NodeTarget(grpc, node.node_id))
    return {"node": node.name, "node_id": node.node_id, "grpc": grpc, "env": dict(node.env)}


def _published(container: str) -> str:
    """The host endpoint Docker publishes the node's gRPC port on."""
    client = docker.from_env()
    try:
        bindings = client.api.port(container, NODE_PORT)
    finally:
        client.close()
    if not bindings:
        raise ShakedownError(f"{container}: port {NODE_PORT} is not published")
    host = bindings[0]["HostIp"] or "127.0.0.1"
    return f"{'127.0.0.1' if host == '0.0.0.0' else host}:{bindings[0]['HostPort']}"


# --- leave -------------------------------------------------------------------------------------

def leave(driver: Driver, action: Action) -> dict[str, Any]:
    """Wait until every other canonical node holds the leaver's envelopes, take it out of the
    canonical set, see the others stop following it, then publish ``AFTER_LEAVE`` envelopes to
    it (it still runs): none of them may reach a canonical node."""
    node = _entry(driver, action.target)
    node_id = int(node["node_id"])
    chain = chain_of(driver.record)
    canonical = set(chain.canonical_node_ids())
    others = {n["name"]: n for n in driver.record["nodes"]
              if int(n["node_id"]) in canonical and n["name"] != action.target}
    try:
        wait_for(driver.probe.sample, lambda s: _drained(s, action.target, node_id, others),
                 timeout=DRAIN_S, interval=0.2, what=f"{action.target}'s envelopes everywhere")
    except TimeoutExpired as e:
        raise ShakedownError(f"node-leave: {action.target} never drained: {e}") from e
    chain.remove_from_network(node_id)
    left = time.monotonic()
    try:
        followers = wait_for(lambda: _followers(others, node_id), lambda f: not f,
                             timeout=UNFOLLOW_S, interval=0.2,
                             what=f"nobody follows {action.target}")
    except TimeoutExpired:
        followers = _followers(others, node_id)
    unfollowed = None if followers else round(time.monotonic() - left, 3)
    signer = Signer(bytes(payer(0).key))
    with NodeClient(node["grpc"], timeout=10) as client:
        signed = client.publish(payer_envelopes(signer, node_id, AFTER_LEAVE,
                                                topic=b"topic/after-leave"))
    return {"node": action.target, "node_id": node_id, "unfollowed_after_s": unfollowed,
            "still_following": followers, "after_leave": [_key(e) for e in signed]}


def _drained(sample: dict[str, dict[str, Any]], name: str, node_id: int,
             others: dict[str, Any]) -> bool:
    own = sample.get(name, {}).get("clock")
    if own is None:
        return False
    top = int(own.get(str(node_id), 0))
    return all(int(sample.get(o, {}).get("clock", {}).get(str(node_id), -1)) >= top
               for o in others)


def _followers(others: dict[str, Any], node_id: int) -> list[str]:
    """The nodes whose health says they still replicate from ``node_id`` (or cannot say)."""
    found = []
    for name, node in sorted(others.items()):
        try:
            with NodeClient(node["grpc"], timeout=3) as client:
                if node_id in client.health().replicating_from:
                    found.append(name)
        except Exception as e:
            found.append(f"{name} ({type(e).__name__})")
    return found


def _key(env: pb.OriginatorEnvelope) -> list[Any]:
    unsigned = pb.UnsignedOriginatorEnvelope.FromString(env.unsigned_originator_envelope)
    return [unsigned.originator_node_id, unsigned.originator_sequence_id,
            hashlib.sha256(env.SerializeToString()).hexdigest()]


# --- reconfigure -------------------------------------------------------------------------------

def reconfigure(driver: Driver, action: Action) -> dict[str, Any]:
    """Edit the run's inventory (``node_env`` of the node) and deploy it again: the deploy
    recreates only the node whose settings changed and waits for its health."""
    from shakedown.deploy.runner import run_pyinfra

    node_id = int(_entry(driver, action.target)["node_id"])
    if node_id not in [n.node_id for n in driver.net.model.nodes]:
        raise ConfigError(f"node-env: {action.target} is not in the run's inventory")
    data = dict(driver.net.data)
    env = {int(k): dict(v) for k, v in dict(data.get("node_env") or {}).items()}
    env.setdefault(node_id, {}).update(_env(action))
    data["node_env"] = env
    driver.net = dataclasses.replace(driver.net, data=data).written(driver.scenario.name)
    began = time.monotonic()
    summary = run_pyinfra(driver.net.inventory, "testnet.py", verbose=False)
    return {"node": action.target, "env": _env(action), "deploy": summary,
            "deploy_s": round(time.monotonic() - began, 3)}
