"""The originator path: sequence, price, sign and store payer envelopes in group commits.

Requests queue up; one writer drains the queue, gives every envelope the next sequence id,
stores the whole group in one transaction and only then answers. One writer means sequence
ids are assigned in commit order, so a subscriber reading by sequence never sees a gap, and
that it alone knows what is stored when it sequences: a request repeating an envelope already
stored (or queued before it) is refused as a replay, the rest of the group goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from refnode.chain import Rates
from refnode.envelopes import PayerEnvelope, Signer, sign_originator_envelope
from refnode.fanout import Fanout
from refnode.membership import Membership
from refnode.pricing import Pricing
from refnode.proto import refnode_pb2 as pb
from refnode.store import Store, StoredEnvelope

log = logging.getLogger("refnode.publisher")

MAX_GROUP = 2000  # envelopes per transaction


class Replayed(Exception):
    """A request repeats a payer envelope this node already took: nothing of it is stored."""


@dataclass
class _Request:
    envelopes: list[PayerEnvelope]
    done: asyncio.Future[list[pb.OriginatorEnvelope]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class Publisher:
    def __init__(self, node_id: int, signer: Signer, store: Store, membership: Membership,
                 clock: dict[int, int], fanout: Fanout, pricing: Pricing | None = None,
                 write_behind_s: float = 0.0):
        self.node_id = node_id
        self.write_behind_s = write_behind_s  # > 0: the planted bug REFNODE_WRITE_BEHIND_MS
        self.pricing = pricing or Pricing()
        self.signer = signer
        self.store = store
        self.membership = membership
        self.clock = clock  # shared with replication; updated after each commit
        self.fanout = fanout  # subscribers hear of each commit
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()

    async def publish(self, envelopes: list[PayerEnvelope]) -> list[pb.OriginatorEnvelope]:
        """Sequence and store validated envelopes; returns them as this originator signed them."""
        request = _Request(envelopes)
        await self._queue.put(request)
        return await request.done

    async def run(self) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0].envelopes)
            while size < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
                size += len(group[-1].envelopes)
            await self._commit(group)

    async def _fresh(self, group: list[_Request]) -> list[_Request]:
        """The requests of ``group`` that replay nothing; the others are answered Replayed."""
        try:
            stored = await self.store.originated([e.digest for r in group for e in r.envelopes])
        except Exception as e:  # the database is away: nothing can be sequenced now
            for request in group:
                if not request.done.done():
                    request.done.set_exception(e)
            return []
        fresh, taken = [], set(stored)
        for request in group:
            k = next((i for i, e in enumerate(request.envelopes) if e.digest in taken), None)
            if k is not None:
                if not request.done.done():
                    request.done.set_exception(Replayed(
                        f"envelope {k} was published before: this node stored it already"))
                continue
            taken.update(e.digest for e in request.envelopes)
            fresh.append(request)
        return fresh

    async def _commit(self, group: list[_Request]) -> None:
        group = await self._fresh(group)
        if not group:
            return
        first = self.clock.get(self.node_id, 0) + 1
        rows: list[StoredEnvelope] = []
        originated: list[tuple[bytes, int]] = []
        answers: list[list[pb.OriginatorEnvelope]] = []
        rates = self.membership.rates_now()
        for request in group:
            signed = []
            for env in request.envelopes:
                unsigned = self._originate(env, first + len(rows), rates)
                signed.append(sign_originator_envelope(self.signer, unsigned))
                rows.append(_row(signed[-1], unsigned, env))
                originated.append((env.digest, rows[-1].sequence_id))
            answers.append(signed)
        if self.write_behind_s:  # planted bug: acknowledged before stored; a crash loses them
            _answer(group, answers)
            await asyncio.sleep(self.write_behind_s)
        try:
            await self.store.insert_envelopes(rows, originated)
        except Exception as e:  # nothing was stored: no sequence id was used
            log.error("storing %d envelopes failed: %s", len(rows), e)
            for request in group:
                if not request.done.done():
                    request.done.set_exception(e)
            return
        self.clock[self.node_id] = first + len(rows) - 1
        await self.fanout.deliver(self.node_id, [(r.sequence_id, r.blob) for r in rows])
        _answer(group, answers)

    def _originate(self, env: PayerEnvelope, sequence_id: int,
                   rates: Rates) -> pb.UnsignedOriginatorEnvelope:
        retention = env.raw.message_retention_days
        now_ns = time.time_ns()
        base_fee, congestion_fee = self.pricing.fees(rates, env.size, retention)
        return pb.UnsignedOriginatorEnvelope(
            originator_node_id=self.node_id,
            originator_sequence_id=sequence_id,
            originator_ns=now_ns,
            payer_envelope_bytes=env.raw.SerializeToString(deterministic=True),
            base_fee_picodollars=base_fee,
            congestion_fee_picodollars=congestion_fee,
            expiry_unixtime=now_ns // 1_000_000_000 + retention * 86_400,
        )


def _answer(group: list[_Request], answers: list[list[pb.OriginatorEnvelope]]) -> None:
    for request, signed in zip(group, answers, strict=True):
        if not request.done.done():  # the caller may have given up (cancelled)
            request.done.set_result(signed)


def _row(signed: pb.OriginatorEnvelope, unsigned: pb.UnsignedOriginatorEnvelope,
         env: PayerEnvelope) -> StoredEnvelope:
    return StoredEnvelope(
        originator_node_id=unsigned.originator_node_id,
        sequence_id=unsigned.originator_sequence_id,
        originator_ns=unsigned.originator_ns,
        topic=env.topic,
        payer=env.payer,
        expiry=unsigned.expiry_unixtime,
        fee=unsigned.base_fee_picodollars + unsigned.congestion_fee_picodollars,
        blob=signed.SerializeToString(),
    )
