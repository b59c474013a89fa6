"""``refnode-gateway``: the payer. Signs client envelopes with its key and forwards them to nodes.

Configured by GATEWAY_* environment variables (see config.py). Clients publish unsigned
client envelopes; the gateway picks the target node (or takes the client's choice), signs
each envelope as payer for that node and forwards it, so every envelope it carries is paid
for by the gateway's address.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sys

import grpc

from refnode import __version__
from refnode.chain import ChainReader
from refnode.config import ConfigError, GatewayConfig
from refnode.envelopes import Signer, sign_payer_envelope
from refnode.membership import Membership
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.replication import CHANNEL_OPTIONS

log = logging.getLogger("refnode.gateway")


class PayerService(rpc.PayerApiServicer):
    def __init__(self, signer: Signer, membership: Membership):
        self.signer = signer
        self.membership = membership
        self._turn = itertools.count()
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def PublishClientEnvelopes(self, request: pb.PublishClientEnvelopesRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.PublishClientEnvelopesResponse:
        if not request.envelopes:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no envelopes to publish")
        canonical = self.membership.canonical()
        node_id = request.target_node_id or self._pick(canonical)
        node = self.membership.nodes.get(node_id)
        if node is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"node {node_id} is not registered; canonical: {sorted(canonical)}")
        assert node is not None  # abort raised; this tells type checkers so
        signed = [sign_payer_envelope(self.signer, env.SerializeToString(), node_id)
                  for env in request.envelopes]
        stub = rpc.ReplicationApiStub(self._channel(node.http_address))
        try:
            response = await stub.PublishPayerEnvelopes(
                pb.PublishPayerEnvelopesRequest(payer_envelopes=signed),
                timeout=context.time_remaining())
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), f"node {node_id}: {e.details()}")
        return pb.PublishClientEnvelopesResponse(
            originator_envelopes=response.originator_envelopes)

    async def GetHealth(self, request: pb.GetGatewayHealthRequest,
                        context: grpc.aio.ServicerContext) -> pb.GetGatewayHealthResponse:
        return pb.GetGatewayHealthResponse(serving=True, payer_address=self.signer.address,
                                           version=__version__)

    def _pick(self, canonical: dict) -> int:
        if not canonical:
            return 0
        ids = sorted(canonical)
        return ids[next(self._turn) % len(ids)]

    def _channel(self, address: str) -> grpc.aio.Channel:
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        return self._channels[address]


async def serve(config: GatewayConfig) -> None:
    signer = Signer(config.payer_key)
    membership = Membership(ChainReader(config.chain_rpc, config.node_registry),
                            config.registry_refresh_s)
    await membership.wait_until_readable(deadline_s=60)
    server = grpc.aio.server()
    rpc.add_PayerApiServicer_to_server(PayerService(signer, membership), server)
    server.add_insecure_port(config.listen)
    await server.start()
    log.info("gateway for payer %s serving on %s", signer.address, config.listen)
    refresh = asyncio.create_task(membership.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    refresh.cancel()
    await server.stop(grace=2)


def main() -> None:
    try:
        config = GatewayConfig.from_env()
    except ConfigError as e:
        print(f"refnode-gateway: {e}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
