"""The ReplicationApi servicer: publish, query, subscribe (replication), health, status,
attest.

A subscription first reads the database from its cursor, a page at a time, then follows the
live tail (``Fanout``): the envelopes each commit stores, from its bounded buffer. When it
falls behind (its buffer overflowed, or a gap shows) it reads the database again; it also
re-reads it after ``IDLE_RECHECK_S`` without news, as a safety net.
"""

from __future__ import annotations

import logging

import grpc

from refnode import __version__
from refnode.admission import Admission, Refused
from refnode.attest import Attester, report_from_proto
from refnode.byzantine import Byzantine
from refnode.checker import Checker
from refnode.fanout import Behind, Fanout, Listener
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.publisher import Publisher, Replayed
from refnode.replication import NODE_ID_HEADER, Replicator
from refnode.status import NodeStatus, Stream
from refnode.store import Store

log = logging.getLogger("refnode.api")

PAGE = 500            # envelopes per query page
SUBSCRIBE_PAGE = 5000  # envelopes per subscription message: a follower catching up stores
#                        and checks big batches (one transaction, split over its workers)
IDLE_RECHECK_S = 5.0  # a subscriber re-reads even without a signal, as a safety net


class ReplicationService(rpc.ReplicationApiServicer):
    def __init__(self, node_id: int, store: Store, publisher: Publisher, clock: dict[int, int],
                 fanout: Fanout, api_enabled: bool, replicator: Replicator | None,
                 attester: Attester | None = None, byzantine: Byzantine | None = None,
                 admission: Admission | None = None, status: NodeStatus | None = None,
                 checker: Checker | None = None):
        self.node_id = node_id
        self.checker = checker or Checker(workers=1)  # opens envelopes off the event loop
        self.status = status or NodeStatus(node_id)
        self.admission = admission or Admission(node_id, publisher.membership)
        self.byzantine = byzantine  # None unless this node is a rogue on purpose
        self.attester = attester  # None when payer reports are off
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.fanout = fanout
        self.api_enabled = api_enabled
        self.replicator = replicator  # None when sync is off

    async def PublishPayerEnvelopes(self, request: pb.PublishPayerEnvelopesRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.PublishPayerEnvelopesResponse:
        if not self.api_enabled:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the publish API is disabled")
        try:
            self.admission.check_size(request)  # the cheap rule before any recovery
            opened = await self.checker.open_payers(request.payer_envelopes) \
                if self.admission.check_signatures else None
            signed = await self.publisher.publish(self.admission.admit(request, opened))
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
                                 context: grpc.aio.ServicerContext) -> None:
        cursor = dict(request.last_seen.node_id_to_sequence_id)
        originators = list(request.originator_node_ids)
        if not originators:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name the originators to follow")
        await context.send_initial_metadata(())  # the follower knows the stream is up
        subscriber = _node_id_of(context)
        with self.fanout.listen(originators) as live, \
                self.status.stream("serving", subscriber, context.peer()) as stream:
            while True:
                stream.state = "catching-up"
                await self._catch_up(context, cursor, originators, live, stream)
                stream.state = "live"
                await self._follow_live(context, cursor, live, stream)

    async def _catch_up(self, context: grpc.aio.ServicerContext, cursor: dict[int, int],
                        originators: list[int], live: Listener, stream: Stream) -> None:
        """Send what the database holds past ``cursor`` until a pass finds nothing new and
        the live buffer has not overflowed meanwhile (so it holds everything since)."""
        while True:
            live.reset()
            sent = False
            for originator in originators:
                while blobs := await self.store.read_after(originator, cursor.get(originator, 0),
                                                           SUBSCRIBE_PAGE):
                    await self._send(context, stream, originator, cursor,
                                     [pb.OriginatorEnvelope.FromString(b) for b in blobs])
                    sent = True
            if not sent and not live.behind:
                return

    async def _follow_live(self, context: grpc.aio.ServicerContext, cursor: dict[int, int],
                           live: Listener, stream: Stream) -> None:
        """Send the live tail until the subscriber falls behind, a gap shows, or nothing came
        for ``IDLE_RECHECK_S``; then the caller reads the database again."""
        while True:
            try:
                batches = await live.take(IDLE_RECHECK_S)
            except Behind:
                return
            for batch in batches:
                fresh = [(s, b) for s, b in batch.envelopes if s > cursor.get(batch.originator, 0)]
                if not fresh:
                    continue
                if fresh[0][0] != cursor.get(batch.originator, 0) + 1:
                    return  # a batch was missed: the database has it
                await self._send(context, stream, batch.originator, cursor,
                                 [pb.OriginatorEnvelope.FromString(b) for _, b in fresh])
            if self.byzantine and cursor.get(self.node_id, -1) >= self.clock.get(self.node_id, 0):
                for lie in await self.byzantine.lies(self.clock.get(self.node_id, 0)):
                    await context.write(lie)
            if not batches:
                return

    async def _send(self, context: grpc.aio.ServicerContext, stream: Stream, originator: int,
                    cursor: dict[int, int], envs: list[pb.OriginatorEnvelope]) -> None:
        """One message; waits as long as the subscriber's flow control says (backpressure)."""
        await context.write(pb.SubscribeEnvelopesResponse(envelopes=envs))
        cursor[originator] = pb.UnsignedOriginatorEnvelope.FromString(
            envs[-1].unsigned_originator_envelope).originator_sequence_id
        stream.sent(len(envs))

    async def GetStatus(self, request: pb.GetStatusRequest,
                        context: grpc.aio.ServicerContext) -> pb.GetStatusResponse:
        status = self.status.to_proto()
        status.subscribers_behind = self.fanout.times_behind
        return status

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


def _node_id_of(context: grpc.aio.ServicerContext) -> int:
    """The follower's node id, if it said (0: a client that did not)."""
    for key, value in context.invocation_metadata() or ():
        if key == NODE_ID_HEADER and str(value).isdigit():
            return int(value)
    return 0
