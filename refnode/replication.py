"""Replication: follow every other canonical node's own envelopes from this node's vector clock.

One stream per peer. Each batch is checked (parses, signed by the peer's registered signer,
payer signature valid, sequence ids contiguous with what is stored) and stored in one
transaction, so a broken stream, a restart or a bad peer can never leave a gap or a duplicate:
the stream is dropped and resumed from the clock.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from refnode.chain import NodeRecord
from refnode.envelopes import InvalidEnvelope, OriginatorEnvelope, open_originator_envelope
from refnode.membership import Membership, Signal
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.store import Store, StoredEnvelope

log = logging.getLogger("refnode.replication")

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 5_000),
    ("grpc.keepalive_timeout_ms", 3_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 2.0


class ReplicationFault(Exception):
    """A peer sent something this node must not store; the stream is dropped and resumed."""


class Replicator:
    def __init__(self, node_id: int, store: Store, membership: Membership,
                 clock: dict[int, int], stored: Signal, max_age_s: float = 0.0,
                 follow_registered: bool = False):
        self.node_id = node_id
        # Planted bugs (off by default): REFNODE_MAX_ENVELOPE_AGE_S, REFNODE_FOLLOW_REGISTERED.
        self.max_age_s = max_age_s
        self.follow_registered = follow_registered
        self.store = store
        self.membership = membership
        self.clock = clock
        self.stored = stored
        self.following: dict[int, tuple[NodeRecord, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        """Keep one follower per other canonical node, reacting to membership changes."""
        try:
            while True:
                changed = self.membership.changed.current()
                self._reconcile(self.membership.nodes if self.follow_registered
                                else self.membership.canonical())
                await changed.wait()
        finally:
            for _, task in self.following.values():
                task.cancel()

    def _reconcile(self, canonical: dict[int, NodeRecord]) -> None:
        wanted = {i: n for i, n in canonical.items() if i != self.node_id}
        for node_id, (record, task) in list(self.following.items()):
            if wanted.get(node_id) != record:
                log.info("stop following node %d", node_id)
                task.cancel()
                del self.following[node_id]
        for node_id, record in wanted.items():
            if node_id not in self.following:
                log.info("follow node %d at %s", node_id, record.http_address)
                task = asyncio.create_task(self._follow(record), name=f"follow-{node_id}")
                self.following[node_id] = (record, task)

    async def _follow(self, peer: NodeRecord) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                async with grpc.aio.insecure_channel(peer.http_address,
                                                     options=CHANNEL_OPTIONS) as channel:
                    await self._stream(rpc.ReplicationApiStub(channel), peer)
                    backoff = BACKOFF_MIN_S
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as e:
                log.info("stream from node %d broke: %s", peer.node_id, e.code().name)
            except (ReplicationFault, InvalidEnvelope) as e:
                log.error("refusing envelopes from node %d: %s", peer.node_id, e)
            except Exception as e:  # storage or anything else: resume from the clock
                log.warning("replication from node %d failed: %s", peer.node_id, e)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _stream(self, stub: rpc.ReplicationApiStub, peer: NodeRecord) -> None:
        start = self.clock.get(peer.node_id, 0)
        request = pb.SubscribeEnvelopesRequest(
            originator_node_ids=[peer.node_id],
            last_seen=pb.Cursor(node_id_to_sequence_id={peer.node_id: start}))
        async for response in stub.SubscribeEnvelopes(request):
            rows = self._check(peer, response.envelopes)
            if rows:
                await self.store.insert_envelopes(rows)
                self.clock[peer.node_id] = rows[-1].sequence_id
                self.stored.fire()

    def _check(self, peer: NodeRecord, envelopes) -> list[StoredEnvelope]:
        expected = self.clock.get(peer.node_id, 0) + 1
        rows = []
        for raw in envelopes:
            env = open_originator_envelope(raw)
            if env.node_id != peer.node_id:
                raise ReplicationFault(f"envelope of node {env.node_id} on node "
                                       f"{peer.node_id}'s stream")
            if env.signer.lower() != peer.signer.lower():
                raise ReplicationFault(f"sequence {env.sequence_id} signed by {env.signer}, "
                                       f"not the registered signer {peer.signer}")
            if env.sequence_id < expected:
                continue  # already stored
            if env.sequence_id > expected:
                raise ReplicationFault(f"gap: expected sequence {expected}, got {env.sequence_id}")
            age_s = (time.time_ns() - env.unsigned.originator_ns) / 1e9
            if self.max_age_s and age_s > self.max_age_s:
                raise ReplicationFault(f"sequence {env.sequence_id} is {age_s:.2f} s old by this "
                                       f"node's clock (REFNODE_MAX_ENVELOPE_AGE_S="
                                       f"{self.max_age_s:g})")
            rows.append(_row(env, raw))
            expected += 1
        return rows


def _row(env: OriginatorEnvelope, raw: pb.OriginatorEnvelope) -> StoredEnvelope:
    return StoredEnvelope(
        originator_node_id=env.node_id,
        sequence_id=env.sequence_id,
        originator_ns=env.unsigned.originator_ns,
        topic=env.payer.topic,
        payer=env.payer.payer,
        expiry=env.unsigned.expiry_unixtime,
        fee=env.fee,
        blob=raw.SerializeToString(),
    )
