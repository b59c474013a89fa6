"""The ReplicationApi servicer: publish, query, subscribe (replication), health, attest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from refnode import __version__
from refnode.admission import Admission, Refused
from refnode.attest import Attester, report_from_proto
from refnode.byzantine import Byzantine
from refnode.membership import Signal
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.publisher import Publisher, Replayed
from refnode.replication import Replicator
from refnode.store import Store

log = logging.getLogger("refnode.api")

PAGE = 500            # envelopes per query page and per subscription message
IDLE_RECHECK_S = 5.0  # a subscriber re-reads even without a signal, as a safety net


class ReplicationService(rpc.ReplicationApiServicer):
    def __init__(self, node_id: int, store: Store, publisher: Publisher, clock: dict[int, int],
                 stored: Signal, api_enabled: bool, replicator: Replicator | None,
                 attester: Attester | None = None, byzantine: Byzantine | None = None,
                 admission: Admission | None = None):
        self.node_id = node_id
        self.admission = admission or Admission(node_id, publisher.membership)
        self.byzantine = byzantine  # None unless this node is a rogue on purpose
        self.attester = attester  # None when payer reports are off
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.stored = stored
        self.api_enabled = api_enabled
        self.replicator = replicator  # None when sync is off

    async def PublishPayerEnvelopes(self, request: pb.PublishPayerEnvelopesRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.PublishPayerEnvelopesResponse:
        if not self.api_enabled:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the publish API is disabled")
        try:
            signed = await self.publisher.publish(self.admission.admit(request))
        except Refused as e:
            refused: tuple[grpc.StatusCode, str] = (e.code, e.message)
        except Replayed as e:
            refused = (grpc.StatusCode.ALREADY_EXISTS, str(e))
        except Exception as e:  # storage failed: nothing was stored, the client may retry
            refused = (grpc.StatusCode.UNAVAILABLE, f"storing failed: {e}")
        else:
            return pb.PublishPayerEnvelopesResponse(originator_envelopes=signed)
        await context.abort(*refused)
        raise AssertionError("abort raises")  # tells type checkers so

    async def QueryEnvelopes(self, request: pb.QueryEnvelopesRequest,
                             context: grpc.aio.ServicerContext) -> pb.QueryEnvelopesResponse:
        if not self.api_enabled:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the query API is disabled")
        limit = min(request.limit or PAGE, PAGE * 10)
        cursor = dict(request.last_seen.node_id_to_sequence_id)
        originators = list(request.originator_node_ids) or await self.store.originators()
        found: list[bytes] = []
        for originator in originators:
            if len(found) >= limit:
                break
            found += await self.store.read_after(originator, cursor.get(originator, 0),
                                                 limit - len(found))
        return pb.QueryEnvelopesResponse(envelopes=[pb.OriginatorEnvelope.FromString(b)
                                                    for b in found])

    async def SubscribeEnvelopes(self, request: pb.SubscribeEnvelopesRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> AsyncIterator[pb.SubscribeEnvelopesResponse]:
        cursor = dict(request.last_seen.node_id_to_sequence_id)
        originators = list(request.originator_node_ids)
        if not originators:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name the originators to follow")
        while True:
            wake = self.stored.current()
            sent = False
            for originator in originators:
                blobs = await self.store.read_after(originator, cursor.get(originator, 0), PAGE)
                if blobs:
                    envs = [pb.OriginatorEnvelope.FromString(b) for b in blobs]
                    last = pb.UnsignedOriginatorEnvelope.FromString(
                        envs[-1].unsigned_originator_envelope)
                    cursor[originator] = last.originator_sequence_id
                    yield pb.SubscribeEnvelopesResponse(envelopes=envs)
                    sent = True
            if not sent and self.byzantine and cursor.get(self.node_id, -1) >= self.clock.get(
                    self.node_id, 0):
                for lie in await self.byzantine.lies(self.clock.get(self.node_id, 0)):
                    yield lie
            if not sent:
                try:
                    await asyncio.wait_for(wake.wait(), IDLE_RECHECK_S)
                except TimeoutError:
                    pass

    async def GetHealth(self, request: pb.GetHealthRequest,
                        context: grpc.aio.ServicerContext) -> pb.GetHealthResponse:
        return pb.GetHealthResponse(
            serving=True, node_id=self.node_id, version=__version__,
            vector_clock=pb.Cursor(node_id_to_sequence_id=self.clock),
            api_enabled=self.api_enabled, sync_enabled=self.replicator is not None,
            replicating_from=sorted(self.replicator.following) if self.replicator else [])

    async def AttestPayerReport(self, request: pb.AttestPayerReportRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.AttestPayerReportResponse:
        if self.attester is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                f"payer reports are off on node {self.node_id}")
        try:
            spec, claimed = report_from_proto(request.report)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        assert self.attester is not None
        verdict = await self.attester.attest(spec, claimed)
        return pb.AttestPayerReportResponse(verdict=verdict.status,  # type: ignore[arg-type]
                                            node_id=self.node_id, signature=verdict.signature,
                                            reason=verdict.reason)
