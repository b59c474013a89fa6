"""Replication: follow every other canonical node's own envelopes from this node's vector clock.

One stream per peer. Each batch is checked (parses, signed by the peer's registered signer,
payer signature valid, sequence ids exactly contiguous with what is stored) and stored in one
transaction, so a broken stream, a restart or a bad peer can never leave a gap or a duplicate:
the stream is dropped and resumed from the clock. A correct peer never re-sends below the
stream's cursor, so a repeat is misbehaviour too: ``equivocation`` when its bytes differ from
the copy already taken (two signed envelopes under one sequence id), ``stale`` when they are
the same. Every refusal keeps its evidence in ``misbehavior_reports``.

``trust_peers`` (REFNODE_TRUST_PEERS) is the bug on purpose: repeats are skipped unexamined
and gaps taken as they come, so a byzantine peer's envelopes are stored.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from refnode.chain import NodeRecord
from refnode.checker import Checker
from refnode.envelopes import InvalidEnvelope, OriginatorEnvelope
from refnode.fanout import Fanout
from refnode.membership import Membership
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.status import NodeStatus, Stream
from refnode.store import Store, StoredEnvelope

log = logging.getLogger("refnode.replication")

BASE_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 2.0
NODE_ID_HEADER = "refnode-node-id"  # who follows: the serving side reports it in GetStatus


def keepalive_options(keepalive_s: float) -> list[tuple[str, int]]:
    """HTTP/2 pings every ``keepalive_s``; a peer that does not answer one within 60% of that
    is gone: its connection is closed, with every stream on it. (gRPC's own ping timeout is a
    minute, and it sends no second ping without data for five: both are set here.) 0: no
    pings, so a vanished peer's streams stay open (the bug on purpose, REFNODE_KEEPALIVE_S=0).
    """
    if not keepalive_s:
        return []
    every, answer = int(keepalive_s * 1000), max(500, int(keepalive_s * 600))
    return [("grpc.keepalive_time_ms", every), ("grpc.keepalive_timeout_ms", answer),
            ("grpc.http2.ping_timeout_ms", answer), ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_time_between_pings_ms", every)]


CHANNEL_OPTIONS = BASE_OPTIONS + keepalive_options(5.0)  # other calls to peers (attest...)


class ReplicationFault(Exception):
    """A peer sent something this node must not store; the stream is dropped and resumed."""


class Misbehavior(ReplicationFault):
    """A refusal with evidence: ``kind``, the sequence id, the envelopes that prove it."""

    def __init__(self, kind: str, sequence_id: int, evidence: bytes, detail: str,
                 conflicting: bytes | None = None):
        super().__init__(f"{kind} at sequence {sequence_id}: {detail}")
        self.kind, self.sequence_id, self.detail = kind, sequence_id, detail
        self.evidence, self.conflicting = evidence, conflicting


class Replicator:
    def __init__(self, node_id: int, store: Store, membership: Membership,
                 clock: dict[int, int], fanout: Fanout, trust_peers: bool = False,
                 status: NodeStatus | None = None, keepalive_s: float = 5.0,
                 checker: Checker | None = None, drop_after_reconnect_s: float = 0.0,
                 max_age_s: float = 0.0, follow_registered: bool = False):
        self.node_id = node_id
        self.checker = checker or Checker(workers=1)  # opens batches off the event loop
        self.status = status or NodeStatus(node_id)
        self.options = BASE_OPTIONS + keepalive_options(keepalive_s)
        self.trust_peers = trust_peers
        # Planted bugs (off by default): REFNODE_MAX_ENVELOPE_AGE_S, REFNODE_FOLLOW_REGISTERED.
        self.max_age_s = max_age_s
        self.follow_registered = follow_registered
        self.store = store
        self.membership = membership
        self.clock = clock
        self.fanout = fanout
        self.drop_after_reconnect_s = drop_after_reconnect_s  # a planted bug when above 0
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
        attempts = 0
        while True:
            attempts += 1  # every stream after this follower's first is a reconnect
            drop_until = time.monotonic() + self.drop_after_reconnect_s \
                if attempts > 1 and self.drop_after_reconnect_s else 0.0
            try:
                async with grpc.aio.insecure_channel(peer.http_address,
                                                     options=self.options) as channel:
                    with self.status.stream("following", peer.node_id,
                                            peer.http_address) as stream:
                        await self._stream(rpc.ReplicationApiStub(channel), peer, stream,
                                           drop_until)
                    backoff = BACKOFF_MIN_S
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as e:
                log.info("stream from node %d broke: %s", peer.node_id, e.code().name)
            except Misbehavior as e:
                log.error("refusing node %d's stream: %s", peer.node_id, e)
                await self._keep_evidence(peer, e)
            except (ReplicationFault, InvalidEnvelope) as e:
                log.error("refusing envelopes from node %d: %s", peer.node_id, e)
            except Exception as e:  # storage or anything else: resume from the clock
                log.warning("replication from node %d failed: %s", peer.node_id, e)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _stream(self, stub: rpc.ReplicationApiStub, peer: NodeRecord,
                      stream: Stream, drop_until: float = 0.0) -> None:
        # The cursor is what is stored, read afresh: a follower cancelled between its commit
        # and its clock update must not ask for what it holds (a repeat is misbehaviour).
        start = await self.store.latest(peer.node_id)
        if start:
            self.clock[peer.node_id] = start
        request = pb.SubscribeEnvelopesRequest(
            originator_node_ids=[peer.node_id],
            last_seen=pb.Cursor(node_id_to_sequence_id={peer.node_id: start}))
        call = stub.SubscribeEnvelopes(request,
                                       metadata=((NODE_ID_HEADER, str(self.node_id)),))
        await call.initial_metadata()  # the peer answered: the stream is up
        stream.state = "streaming"
        async for response in call:
            stream.sent(len(response.envelopes))
            rows = await self._check(peer, response.envelopes,
                                     await self.checker.open_originators(response.envelopes))
            if not rows:
                continue
            top = rows[-1].sequence_id
            if time.monotonic() < drop_until:  # REFNODE_BUG_DROP_AFTER_RECONNECT_S
                log.warning("planted bug: dropping sequence %d of node %d after a reconnect",
                            rows[0].sequence_id, peer.node_id)
                rows, drop_until = rows[1:], 0.0
            if rows:
                await self.store.insert_envelopes(rows)
                await self.fanout.deliver(peer.node_id, [(r.sequence_id, r.blob) for r in rows])
            self.clock[peer.node_id] = top

    async def _check(self, peer: NodeRecord, envelopes,
                     opened: list[OriginatorEnvelope | InvalidEnvelope]) -> list[StoredEnvelope]:
        expected = self.clock.get(peer.node_id, 0) + 1
        rows: list[StoredEnvelope] = []
        taken: dict[int, bytes] = {}  # this batch's envelopes by sequence id
        for raw, env in zip(envelopes, opened, strict=True):
            if isinstance(env, InvalidEnvelope):
                raise env
            if env.node_id != peer.node_id:
                raise ReplicationFault(f"envelope of node {env.node_id} on node "
                                       f"{peer.node_id}'s stream")
            if env.signer.lower() != peer.signer.lower():
                raise ReplicationFault(f"sequence {env.sequence_id} signed by {env.signer}, "
                                       f"not the registered signer {peer.signer}")
            body = raw.SerializeToString()
            if env.sequence_id < expected:
                if self.trust_peers:
                    continue  # the bug on purpose: taken for a harmless duplicate
                earlier = taken.get(env.sequence_id) or await self.store.read_one(
                    peer.node_id, env.sequence_id)
                if earlier is not None and earlier != body:
                    raise Misbehavior("equivocation", env.sequence_id, body,
                                      "a second, different envelope signed by the peer under a "
                                      "sequence id already taken", conflicting=earlier)
                raise Misbehavior("stale", env.sequence_id, body,
                                  f"re-sent below the stream's cursor {expected - 1}")
            if env.sequence_id > expected and not self.trust_peers:
                raise Misbehavior("gap", env.sequence_id, body,
                                  f"expected sequence {expected}")
            age_s = (time.time_ns() - env.unsigned.originator_ns) / 1e9
            if self.max_age_s and age_s > self.max_age_s:
                raise ReplicationFault(f"sequence {env.sequence_id} is {age_s:.2f} s old by this "
                                       f"node's clock (REFNODE_MAX_ENVELOPE_AGE_S="
                                       f"{self.max_age_s:g})")
            rows.append(_row(env, raw))
            taken[env.sequence_id] = body
            expected = env.sequence_id + 1
        return rows

    async def _keep_evidence(self, peer: NodeRecord, e: Misbehavior) -> None:
        try:
            await self.store.record_misbehavior(peer.node_id, e.kind, e.sequence_id, e.evidence,
                                                e.conflicting, e.detail)
        except Exception as err:  # the refusal stands even if the evidence cannot be written
            log.warning("could not record node %d's %s: %s", peer.node_id, e.kind, err)

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
