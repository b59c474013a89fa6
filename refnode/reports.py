"""The payer-report worker: create, collect attestations, submit, settle, mirror the chain.

Every tick, in this order:

1. mirror: read the PayerReportManager for every registered originator and record in this
   node's ``payer_reports`` what is submitted (1) and settled (2), adding reports it never saw;
   a pending report that starts before the chain's last end was superseded: rejected (3);
2. judge the reports this node holds but has not judged (it was asked before it had the range);
3. every ``report_interval_s``: report this node's own envelopes from the end of its last
   report that is not rejected to its current highest sequence id (nothing new: no report);
4. ask the other canonical nodes to attest this node's pending reports, storing each valid
   signature; a report that a majority rejects can never reach a quorum: it and every later
   pending report are marked rejected (3), and the next report starts before them again;
5. submit pending reports in order once they hold n/2+1 signatures of canonical nodes and
   continue the last report on-chain; a report that an on-chain report has passed is rejected;
6. settle this node's submitted reports with the payer list recomputed from its own copy.

    worker = ReportWorker(node_id, config, store, membership, clock, chain, attester, pricing)
    await worker.run()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import grpc

from refnode.attest import Attester, Verdict, report_to_proto
from refnode.chain import NodeRecord
from refnode.config import NodeConfig
from refnode.envelopes import InvalidEnvelope, recover
from refnode.lies import Liar
from refnode.membership import Membership
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc
from refnode.replication import CHANNEL_OPTIONS
from refnode.report_spec import ReportSpec, payers_hash, sorted_payers
from refnode.report_store import (
    ATTESTATION_APPROVED,
    ATTESTATION_REJECTED,
    SUBMISSION_PENDING,
    SUBMISSION_SETTLED,
    SUBMISSION_SUBMITTED,
    ReportRow,
    ReportStore,
)
from refnode.settlement import ChainRefused, OnChainReport, ReportChain

log = logging.getLogger("refnode.reports")

ASK_TIMEOUT_S = 5.0


def tick_seconds(interval_s: float) -> float:
    """How often the worker looks at attestations and the chain: a few times per interval."""
    return min(max(interval_s / 4, 0.25), 5.0)


class Peers:
    """One gRPC channel per peer address, for attestation requests."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def ask(self, peer: NodeRecord, report: pb.PayerReport) -> pb.AttestPayerReportResponse:
        channel = self._channels.get(peer.http_address)
        if channel is None:
            channel = grpc.aio.insecure_channel(peer.http_address, options=CHANNEL_OPTIONS)
            self._channels[peer.http_address] = channel
        stub = rpc.ReplicationApiStub(channel)
        return await stub.AttestPayerReport(pb.AttestPayerReportRequest(report=report),
                                            timeout=ASK_TIMEOUT_S)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


class ReportWorker:
    def __init__(self, node_id: int, config: NodeConfig, reports: ReportStore,
                 membership: Membership, clock: dict[int, int], chain: ReportChain,
                 attester: Attester):
        self.node_id = node_id
        self.config = config
        self.reports = reports
        self.membership = membership
        self.clock = clock
        self.chain = chain
        self.attester = attester
        self.domain = attester.domain
        self.peers = Peers()
        self.rejections: dict[bytes, set[int]] = defaultdict(set)
        self.fees: dict[bytes, dict[str, int]] = {}  # report id -> payer fees, for requests
        self.mirrored: dict[int, int] = defaultdict(int)  # originator -> first index not settled
        self.chain_ends: dict[int, int] = defaultdict(int)  # originator -> last on-chain end
        self.swept: dict[int, int] = {}  # originator -> chain end superseded reports were swept at
        self.liar = Liar(config.lie_in_reports) if config.lie_in_reports else None

    async def run(self) -> None:
        next_report = time.monotonic() + self.config.report_interval_s
        try:
            while True:
                due = time.monotonic() >= next_report
                if due:  # after a slow tick, the next report is an interval away, not at once
                    next_report = time.monotonic() + self.config.report_interval_s
                try:
                    await self.tick(create=due)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # chain or database briefly away: next tick retries
                    log.warning("payer reports: %s: %s", type(e).__name__, e)
                await asyncio.sleep(tick_seconds(self.config.report_interval_s))
        finally:
            await self.peers.close()

    async def tick(self, create: bool) -> None:
        if self.config.mirror_enabled:  # off: a node whose database drifts from the chain
            await self.mirror()
        await self.judge_held()
        if create:
            await self.create()
        await self.collect()
        await self.submit()
        if self.config.settle_enabled:
            await self.settle()

    # -- 1. mirror --------------------------------------------------------------------------

    async def mirror(self) -> None:
        for originator in sorted(self.membership.nodes):
            count = await asyncio.to_thread(self.chain.count, originator)
            for index in range(self.mirrored[originator], count):
                found = await asyncio.to_thread(self.chain.get, originator, index)
                await self._record(found)
                self.chain_ends[originator] = found.spec.end_sequence_id
                if found.is_settled and index == self.mirrored[originator]:
                    self.mirrored[originator] = index + 1
            # A pending copy that the chain has passed was superseded: it can never be submitted.
            end = self.chain_ends[originator]
            if self.swept.get(originator) == end:
                continue
            self.swept[originator] = end
            passed = await self.reports.reject_before(originator, end)
            if passed:
                log.info("%d pending report(s) of node %d superseded on-chain", passed,
                         originator)

    async def _record(self, found: OnChainReport) -> None:
        report_id = found.spec.digest(self.domain)
        status = SUBMISSION_SETTLED if found.is_settled else SUBMISSION_SUBMITTED
        row = await self.reports.get(report_id)
        if row is None:
            await self.reports.insert(ReportRow(report_id, found.spec, status,
                                                submitted_report_index=found.index))
            log.info("recorded node %d's report %d from the chain", found.spec.originator_node_id,
                     found.index)
        elif (row.submission_status, row.submitted_report_index) != (status, found.index):
            await self.reports.set_submission(report_id, status, found.index)

    # -- 2. judge what was asked too early --------------------------------------------------

    async def judge_held(self) -> None:
        if not self.attester.enabled:
            return
        for row in await self.reports.unjudged():
            await self.attester.attest(row.spec, row=row)

    # -- 3. create --------------------------------------------------------------------------

    async def create(self) -> ReportRow | None:
        top = self.clock.get(self.node_id, 0)
        _, chain_end = await asyncio.to_thread(self.chain.last_end, self.node_id)
        start = max(await self.reports.last_end(self.node_id), chain_end)
        node_ids = tuple(sorted(self.membership.canonical()))
        if top <= start or not node_ids:
            return None
        summary = await self.reports.range_summary(self.node_id, start, top, lambda _: None)
        if summary.count != top - start:
            log.error("own envelopes (%d, %d]: %d stored; not reporting", start, top,
                      summary.count)
            return None
        end, claimed, lie = top, summary.fees, ""
        if self.liar is not None:  # on purpose: the report disagrees with the envelopes
            lie = self.liar.next_kind(start, top)
            end, claimed = self.liar.lie(lie, start, top, summary.fees)
        payers, fees = sorted_payers(claimed)
        spec = ReportSpec(self.node_id, start, end, summary.last_minute,
                          payers_hash(payers, fees), node_ids)
        row = ReportRow(spec.digest(self.domain), spec)
        await self.reports.insert(row)
        self.fees[row.id] = claimed
        if lie:
            verdict = await self.attester.vouch(row.id)
            log.warning("report (%d, %d] lies (%s) on purpose", start, end, lie)
        else:
            verdict = await self.attester.attest(spec, summary.fees, row=row)
        log.info("report (%d, %d]: %d payers, %d picodollars, own verdict %d", start, end,
                 len(payers), sum(fees), verdict.status)
        return row

    # -- 4. collect -------------------------------------------------------------------------

    async def collect(self) -> None:
        """One round of attestation requests for every pending own report, all at once (a
        blackholed peer then costs one timeout per round, not one per report)."""
        canonical = self.membership.canonical()
        quorum = len(canonical) // 2 + 1
        asks: list[tuple[ReportRow, NodeRecord, pb.PayerReport]] = []
        for row in await self.reports.of_originator(self.node_id, SUBMISSION_PENDING):
            have = await self.reports.attestations(row.id)
            if len(have.keys() & canonical.keys()) >= quorum:
                continue
            rejected = self.rejections[row.id] & canonical.keys()
            if len(canonical) - len(rejected) < quorum:
                await self._reject(row, f"rejected by nodes {sorted(rejected)}")
                return
            request = report_to_proto(row.spec, await self._fees_of(row))
            asks += [(row, peer, request) for i, peer in sorted(canonical.items())
                     if i != self.node_id and i not in have and i not in rejected]
        answers = await asyncio.gather(*(self._ask(peer, req) for _, peer, req in asks))
        for (row, peer, _), verdict in zip(asks, answers, strict=True):
            await self._take(row, peer, verdict)

    async def _fees_of(self, row: ReportRow) -> dict[str, int]:
        if row.id not in self.fees:  # after a restart: recompute once from the own copy
            summary = await self.reports.range_summary(
                self.node_id, row.spec.start_sequence_id, row.spec.end_sequence_id,
                lambda _: None)
            self.fees[row.id] = summary.fees
        return self.fees[row.id]

    async def _ask(self, peer: NodeRecord, request: pb.PayerReport) -> Verdict:
        try:
            answer = await self.peers.ask(peer, request)
        except grpc.aio.AioRpcError as e:
            return Verdict(0, f"{e.code().name}: {e.details()}")
        return Verdict(int(answer.verdict), answer.reason, bytes(answer.signature))

    async def _take(self, row: ReportRow, peer: NodeRecord, verdict: Verdict) -> None:
        if verdict.status == ATTESTATION_REJECTED:
            self.rejections[row.id].add(peer.node_id)
            log.warning("node %d rejects report (%d, %d]: %s", peer.node_id,
                        row.spec.start_sequence_id, row.spec.end_sequence_id, verdict.reason)
        elif verdict.status == ATTESTATION_APPROVED:
            if _signer_of(row.id, verdict.signature) != peer.signer.lower():
                log.error("node %d's attestation is not signed by its registered signer",
                          peer.node_id)
                return
            await self.reports.add_attestation(row.id, peer.node_id, verdict.signature)

    async def _reject(self, row: ReportRow, why: str) -> None:
        marked = await self.reports.reject_from(self.node_id, row.spec.start_sequence_id)
        self.fees.clear()
        log.warning("report (%d, %d] can never be submitted (%s); %d report(s) rejected",
                    row.spec.start_sequence_id, row.spec.end_sequence_id, why, marked)

    # -- 5. submit --------------------------------------------------------------------------

    async def submit(self) -> None:
        pending = await self.reports.of_originator(self.node_id, SUBMISSION_PENDING)
        if not pending:
            return
        _, chain_end = await asyncio.to_thread(self.chain.last_end, self.node_id)
        canonical = self.membership.canonical()
        quorum = len(canonical) // 2 + 1
        for row in pending:
            if row.spec.start_sequence_id < chain_end:
                await self._reject(row, f"the chain's reports already reach {chain_end}")
                return
            if row.spec.start_sequence_id > chain_end:
                return  # an earlier report is not on-chain yet
            signatures = sorted((n, s) for n, s in (await self.reports.attestations(row.id))
                                .items() if n in canonical)
            if len(signatures) < quorum:
                return
            try:
                index = await asyncio.to_thread(self.chain.submit, row.spec, signatures)
            except ChainRefused as e:
                log.warning("submitting report (%d, %d] refused: %s",
                            row.spec.start_sequence_id, row.spec.end_sequence_id, e)
                return  # the mirror records it if it is on-chain after all; else next tick
            await self.reports.set_submission(row.id, SUBMISSION_SUBMITTED, index)
            log.info("submitted report (%d, %d] as index %d with nodes %s",
                     row.spec.start_sequence_id, row.spec.end_sequence_id, index,
                     [n for n, _ in signatures])
            chain_end = row.spec.end_sequence_id

    # -- 6. settle --------------------------------------------------------------------------

    async def settle(self) -> None:
        for row in await self.reports.of_originator(self.node_id, SUBMISSION_SUBMITTED):
            if row.submitted_report_index is None:
                continue
            payers, fees = sorted_payers(await self._fees_of(row))
            if payers_hash(payers, fees) != row.spec.payers_hash:
                log.error("report %d: own copy no longer matches its payers hash; not settling",
                          row.submitted_report_index)
                continue
            try:
                await asyncio.to_thread(self.chain.settle, self.node_id,
                                        row.submitted_report_index, payers, fees)
            except ChainRefused as e:
                if not str(e).startswith("AlreadySettled"):
                    log.warning("settling report %d refused: %s", row.submitted_report_index, e)
                    continue
            await self.reports.set_submission(row.id, SUBMISSION_SETTLED)
            self.fees.pop(row.id, None)
            log.info("settled report %d: %d picodollars from %d payers",
                     row.submitted_report_index, sum(fees), len(payers))


def _signer_of(digest: bytes, signature: bytes) -> str:
    if len(signature) == 65 and signature[64] >= 27:
        signature = signature[:64] + bytes([signature[64] - 27])
    try:
        return recover(digest, signature).lower()
    except InvalidEnvelope:
        return ""
