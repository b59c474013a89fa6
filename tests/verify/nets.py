"""Testnets for the verify suite's tests: up with traffic, gateway ready, converged, settled."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import docker
import psycopg

from refnode.envelopes import Signer
from shakedown.client import GatewayClient, client_envelopes
from shakedown.keys import payer
from shakedown.traffic import GatewayTarget, NodeTarget, Traffic
from shakedown.verify.replication import wait_converged
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net
from tests.deploy.testnets import fresh_testnet as deployed
from tests.verify.corrupt import NODES, chain_of, sql

ENVELOPES = 600
REPORTS_EVERY_2S = {n: {"REFNODE_REPORT_INTERVAL_S": "2"} for n in NODES}


def gateway_ready(net: Net) -> None:
    """Wait until the gateway lands an envelope on every node (it learns them from the chain)."""
    record = net.record()
    with GatewayClient(record["gateway"]["grpc"], timeout=5) as gw:
        for node in record["nodes"]:
            wait_for(lambda n=node: gw.publish(client_envelopes(1), n["node_id"]), bool,
                     timeout=60, interval=0.3, what=f"{net.name}: gateway reaches {node['name']}")


def send_traffic(net: Net, count: int = ENVELOPES) -> None:
    """``count`` envelopes to every node directly (two payers) and through the gateway."""
    record = net.record()
    targets: list[NodeTarget | GatewayTarget] = [
        NodeTarget(n["grpc"], n["node_id"]) for n in record["nodes"]]
    targets.append(GatewayTarget(record["gateway"]["grpc"]))
    stats = Traffic(targets, rate=0, duration_s=60, max_envelopes=count, batch=50, workers=2,
                    payers=[Signer(bytes(payer(i).key)) for i in range(2)], timeout=30).run()
    assert stats.acked == count, f"traffic: {stats.acked} of {count} acked; {stats.errors}"


def converged(net: Net) -> None:
    """Wait until every node holds the same envelopes of every node."""
    conns = {n["name"]: psycopg.connect(n["dsn"], autocommit=True, connect_timeout=3)
             for n in net.record()["nodes"]}
    try:
        wait_converged(conns, {100, 200, 300}, timeout=90)
    finally:
        for conn in conns.values():
            conn.close()


def all_settled(net: Net) -> bool:
    """Every originator's envelopes are in a settled report, and node-100 mirrors them."""
    chain = chain_of(net)
    for originator in NODES:
        ((high,),) = sql(net, 100, "SELECT COALESCE(MAX(originator_sequence_id), 0) FROM "
                         "gateway_envelopes_meta WHERE originator_node_id = %s", (originator,))
        reports = chain.payer_reports(originator)
        if not reports or not reports[-1].is_settled or reports[-1].end_sequence_id != high:
            return False
    ((unsettled,),) = sql(net, 100, "SELECT count(*) FROM payer_reports WHERE "
                          "submission_status IN (0, 1)")
    return unsettled == 0


def fresh_testnet(make: Callable[..., Net],
                  client: docker.DockerClient) -> AbstractContextManager[Net]:
    """A fresh testnet (prefix ``sdv``), down and reaped at the end even after a failure."""
    return deployed(make, client, "sdv")
