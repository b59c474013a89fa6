"""``refnode``: run one node. Configured by REFNODE_* environment variables (see config.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

import grpc

from refnode.admission import MAX_REQUEST, Admission
from refnode.api import ReplicationService
from refnode.attest import Attester, Judge
from refnode.byzantine import Byzantine
from refnode.chain import ChainReader
from refnode.checker import Checker
from refnode.config import ConfigError, NodeConfig
from refnode.envelopes import Signer
from refnode.fanout import Fanout
from refnode.interceptors import FrontDoor, RateLimit
from refnode.membership import Membership
from refnode.pricing import Pricing
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.publisher import Publisher
from refnode.replication import Replicator, keepalive_options
from refnode.report_store import ReportStore
from refnode.reports import ReportWorker
from refnode.settlement import ReportChain
from refnode.status import NodeStatus
from refnode.store import Store

log = logging.getLogger("refnode")

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_REQUEST),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 500),  # peers' keepalives are welcome
]
REGISTRATION_WAIT_S = 600.0


async def find_node_id(config: NodeConfig, signer: Signer, membership: Membership) -> int:
    """This node's id: configured, or the registry entry whose signer is this node's key."""
    end = time.monotonic() + REGISTRATION_WAIT_S
    while True:
        record = (membership.nodes.get(config.node_id) if config.node_id
                  else membership.node_of_signer(signer.address))
        if record is not None:
            if record.signer.lower() != signer.address.lower():
                raise ConfigError(f"node {record.node_id} is registered with signer "
                                  f"{record.signer}, but this node's key is {signer.address}")
            return record.node_id
        if time.monotonic() > end:
            raise ConfigError(f"no node registered with signer {signer.address}")
        log.info("waiting for signer %s to be registered on-chain", signer.address)
        await asyncio.sleep(membership.refresh_s)
        await membership.refresh()


async def _report_worker(config: NodeConfig, node_id: int, signer: Signer, store: Store,
                         membership: Membership, clock: dict[int, int],
                         pricing: Pricing) -> ReportWorker | None:
    """The payer-report worker, or None when no PayerReportManager is configured."""
    if not config.payer_report_manager:
        return None
    chain = ReportChain(config.chain_rpc, config.payer_report_manager, config.signer_key)
    domain = await asyncio.to_thread(chain.domain)
    reports = ReportStore(store.pool)
    judge = Judge(reports, membership, clock, pricing)
    attester = Attester(node_id, signer, judge, reports, domain, config.attest_enabled,
                        config.attest_blindly)
    return ReportWorker(node_id, config, reports, membership, clock, chain, attester)


async def serve(config: NodeConfig, checker: Checker | None = None) -> None:
    signer = Signer(config.signer_key)
    membership = Membership(ChainReader(config.chain_rpc, config.node_registry,
                                        config.rate_registry), config.registry_refresh_s)
    await membership.wait_until_readable(deadline_s=60)
    node_id = await find_node_id(config, signer, membership)
    store = await Store.open(config.db_dsn, reconnect=config.db_reconnect)
    await store.migrate()
    await store.ensure_node_info(node_id, signer.public_key)
    if config.bug_forget_usage_on_restart:
        forgotten = await store.forget_unsettled_usage(node_id)
        log.warning("planted bug: forgot %d rows of unsettled usage at start", forgotten)
    clock = await store.vector_clock()
    fanout = Fanout(config.subscriber_buffer, config.blocking_fanout)
    status = NodeStatus(node_id)
    pricing = Pricing(config.price_multiplier)
    publisher = Publisher(node_id, signer, store, membership, clock, fanout, pricing,
                          write_behind_s=config.write_behind_ms / 1000)
    replicator = Replicator(node_id, store, membership, clock, fanout, config.trust_peers,
                            status, config.keepalive_s, checker,
                            config.bug_drop_after_reconnect_s,
                            max_age_s=config.max_envelope_age_s,
                            follow_registered=config.follow_registered)
    worker = await _report_worker(config, node_id, signer, store, membership, clock, pricing)
    service = ReplicationService(node_id, store, publisher, clock, fanout,
                                 config.api_enabled, replicator if config.sync_enabled else None,
                                 worker.attester if worker else None,
                                 Byzantine(node_id, signer, store, config.byzantine)
                                 if config.byzantine else None,
                                 Admission(node_id, membership, config.check_payer_signatures),
                                 status, checker)

    server = grpc.aio.server(options=SERVER_OPTIONS + keepalive_options(config.keepalive_s),
                             interceptors=[FrontDoor(status, RateLimit(config.rate_limit))])
    rpc.add_ReplicationApiServicer_to_server(service, server)
    server.add_insecure_port(config.listen)
    await server.start()
    log.info("node %d serving on %s (api %s, sync %s, reports %s, clock %s)", node_id,
             config.listen, config.api_enabled, config.sync_enabled,
             f"every {config.report_interval_s:g}s" if worker else "off", clock)
    for on, what in ((config.byzantine, f"byzantine on purpose: {','.join(config.byzantine)}"),
                     (config.trust_peers, "trusts its peers' streams (REFNODE_TRUST_PEERS)"),
                     (not config.check_payer_signatures, "stores envelopes whose payer "
                      "signature does not hold (REFNODE_CHECK_PAYER_SIGNATURES=0)"),
                     (config.lie_in_reports, f"lies in its payer reports on purpose: "
                                             f"{','.join(config.lie_in_reports)}"),
                     (config.attest_blindly, "attests reports without comparing "
                                             "(REFNODE_ATTEST_BLINDLY)"),
                     (not config.rate_limit, "takes any rate of calls from a client "
                                             "(REFNODE_RATE_LIMIT=0)"),
                     (not config.keepalive_s, "never pings its peers: a vanished peer's "
                                              "streams stay open (REFNODE_KEEPALIVE_S=0)"),
                     (config.blocking_fanout, "waits for every subscriber to have room "
                                              "(REFNODE_BLOCKING_FANOUT)")):
        if on:
            log.warning("node %d %s", node_id, what)

    tasks = [asyncio.create_task(membership.run(), name="membership"),
             asyncio.create_task(publisher.run(), name="publisher")]
    if config.sync_enabled:
        tasks.append(asyncio.create_task(replicator.run(), name="replication"))
    if worker:
        tasks.append(asyncio.create_task(worker.run(), name="payer-reports"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done_task = asyncio.create_task(stop.wait())
    finished, _ = await asyncio.wait([done_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in finished:
        if task is not done_task and task.exception():
            log.error("task %s died: %s", task.get_name(), task.exception())
    log.info("node %d stopping", node_id)
    await server.stop(grace=2)
    for task in tasks:
        task.cancel()
    await store.close()


def main() -> None:
    try:
        config = NodeConfig.from_env()
    except ConfigError as e:
        print(f"refnode: {e}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # forks its workers: before the loop, gRPC and any thread start
    checker = Checker(config.check_workers or None)
    try:
        asyncio.run(serve(config, checker))
    except ConfigError as e:
        log.error("%s", e)
        sys.exit(2)
    finally:
        checker.close()


if __name__ == "__main__":
    main()
