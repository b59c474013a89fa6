"""Attestation: a node signs a payer report only when its own copy of the range agrees.

The judge recomputes the report from this node's stored envelopes of that originator: every
envelope present, each priced as the RateRegistry says (this node's pricing), the same fees per
payer, the same end minute. A node that lacks part of the range answers "pending" and is asked
again; one whose copy disagrees rejects, and records that verdict in its own ``payer_reports``.

    attester = Attester(node_id, signer, judge, reports, domain, enabled=True)
    verdict = await attester.attest(spec)      # Verdict(status=1, signature=b"...")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from refnode.envelopes import Signer
from refnode.membership import Membership
from refnode.pricing import Pricing
from refnode.proto import refnode_pb2 as pb
from refnode.report_spec import ReportDomain, ReportSpec, payers_hash, sorted_payers
from refnode.report_store import (
    ATTESTATION_APPROVED,
    ATTESTATION_PENDING,
    ATTESTATION_REJECTED,
    Envelope,
    ReportRow,
    ReportStore,
)

log = logging.getLogger("refnode.attest")


@dataclass(frozen=True)
class Verdict:
    """xmtpd's attestation codes: 0 pending, 1 approved (with the signature), 2 rejected."""

    status: int
    reason: str = ""
    signature: bytes = b""


def report_to_proto(spec: ReportSpec, fees: Mapping[str, int]) -> pb.PayerReport:
    payers, amounts = sorted_payers(fees)
    return pb.PayerReport(
        originator_node_id=spec.originator_node_id, start_sequence_id=spec.start_sequence_id,
        end_sequence_id=spec.end_sequence_id, end_minute_since_epoch=spec.end_minute_since_epoch,
        payers_hash=spec.payers_hash, node_ids=list(spec.node_ids), payers=payers, fees=amounts)


def report_from_proto(msg: pb.PayerReport) -> tuple[ReportSpec, dict[str, int]]:
    """The signed fields and the payer list a request claims; ValueError if malformed."""
    if len(msg.payers_hash) != 32:
        raise ValueError(f"payers_hash must be 32 bytes, got {len(msg.payers_hash)}")
    if len(msg.payers) != len(msg.fees):
        raise ValueError(f"{len(msg.payers)} payers but {len(msg.fees)} fees")
    spec = ReportSpec(msg.originator_node_id, msg.start_sequence_id, msg.end_sequence_id,
                      msg.end_minute_since_epoch, bytes(msg.payers_hash), tuple(msg.node_ids))
    return spec, dict(zip(msg.payers, msg.fees, strict=True))


class Judge:
    """Does this node's copy of a report's range agree with the report?"""

    def __init__(self, reports: ReportStore, membership: Membership, clock: dict[int, int],
                 pricing: Pricing):
        self.reports = reports
        self.membership = membership
        self.clock = clock  # shared with replication: the highest sequence stored per originator
        self.pricing = pricing

    async def judge(self, spec: ReportSpec, claimed: Mapping[str, int] | None = None) -> Verdict:
        origin, start, end = spec.originator_node_id, spec.start_sequence_id, spec.end_sequence_id
        if end <= start:
            return Verdict(ATTESTATION_REJECTED, f"empty or inverted range ({start}, {end}]")
        ids = list(spec.node_ids)
        if not ids or ids != sorted(set(ids)):
            return Verdict(ATTESTATION_REJECTED, f"node ids {ids} are not ascending and unique")
        unknown = [n for n in [origin, *ids] if n not in self.membership.nodes]
        if unknown:
            return Verdict(ATTESTATION_PENDING, f"node {unknown[0]} is not registered (yet)")
        have = self.clock.get(origin, 0)
        if have < end:
            return Verdict(ATTESTATION_PENDING, f"holds node {origin}'s envelopes up to {have} "
                                                f"of {end}")
        summary = await self.reports.range_summary(origin, start, end, self._check_fee)
        if summary.count != end - start:
            return Verdict(ATTESTATION_REJECTED, f"holds {summary.count} of the {end - start} "
                                                 f"envelopes ({start}, {end}]")
        if summary.mispriced:
            return Verdict(ATTESTATION_REJECTED, summary.mispriced)
        if summary.last_minute != spec.end_minute_since_epoch:
            return Verdict(ATTESTATION_REJECTED, f"end minute {spec.end_minute_since_epoch}, "
                                                 f"but envelope {end} is of minute "
                                                 f"{summary.last_minute}")
        payers, fees = sorted_payers(summary.fees)
        if payers_hash(payers, fees) != spec.payers_hash:
            return Verdict(ATTESTATION_REJECTED, _difference(dict(zip(payers, fees,
                                                                      strict=True)), claimed))
        return Verdict(ATTESTATION_APPROVED)

    def _check_fee(self, env: Envelope) -> str | None:
        allowed = self.pricing.acceptable(self.membership.schedule, env.originator_ns / 1e9,
                                          env.size, env.retention_days)
        if (env.base_fee, env.congestion_fee) in allowed:
            return None
        base, congestion = sorted(allowed)[-1]
        return (f"envelope {env.sequence_id} charges {env.base_fee} + {env.congestion_fee} "
                f"picodollars; this node prices it {base} + {congestion}")


def _difference(own: dict[str, int], claimed: Mapping[str, int] | None) -> str:
    """Where the payer lists differ, as far as the request says what it claims."""
    if not claimed:
        return "payers hash differs from this node's copy"
    theirs = dict(zip(*sorted_payers(claimed), strict=True))
    for payer in sorted(own.keys() | theirs.keys(), key=lambda a: int(a, 16)):
        if own.get(payer, 0) != theirs.get(payer, 0):
            return (f"payer {payer}: report charges {theirs.get(payer, 0)}, this node's copy "
                    f"{own.get(payer, 0)} picodollars")
    return "payers hash does not match the payer list it was sent with"


class Attester:
    """Judges, records and (when enabled) signs reports, for peers and for this node alike."""

    def __init__(self, node_id: int, signer: Signer, judge: Judge, reports: ReportStore,
                 domain: ReportDomain, enabled: bool, blindly: bool = False):
        self.node_id = node_id
        self.blindly = blindly  # the bug on purpose (REFNODE_ATTEST_BLINDLY): sign unjudged
        self.signer = signer
        self.judge = judge
        self.reports = reports
        self.domain = domain
        self.enabled = enabled
        self._reasons: dict[bytes, str] = {}

    async def attest(self, spec: ReportSpec, claimed: Mapping[str, int] | None = None,
                     row: ReportRow | None = None) -> Verdict:
        """Record the report if new, then this node's verdict on it (the same every time)."""
        report_id = spec.digest(self.domain)
        row = row or await self.reports.get(report_id)
        if row is None:
            row = ReportRow(report_id, spec)
            await self.reports.insert(row)
        if not self.enabled:
            return Verdict(ATTESTATION_PENDING, f"node {self.node_id} does not attest")
        if row.attestation_status == ATTESTATION_APPROVED:
            return Verdict(ATTESTATION_APPROVED, signature=self.signer.sign(report_id))
        if row.attestation_status == ATTESTATION_REJECTED:
            return Verdict(ATTESTATION_REJECTED, self._reasons.get(report_id, "rejected before"))
        if self.blindly:
            return await self.vouch(report_id)
        verdict = await self.judge.judge(spec, claimed)
        if verdict.status == ATTESTATION_PENDING:
            return verdict
        if verdict.status == ATTESTATION_REJECTED:
            self._reasons[report_id] = verdict.reason
            log.warning("rejecting node %d's report (%d, %d]: %s", spec.originator_node_id,
                        spec.start_sequence_id, spec.end_sequence_id, verdict.reason)
            await self.reports.set_attestation(report_id, ATTESTATION_REJECTED)
            return verdict
        return await self.vouch(report_id)

    async def vouch(self, report_id: bytes) -> Verdict:
        """Approve and sign a recorded report without judging it (after the judge agreed, or
        as a liar vouching for its own report, or as a blind attester)."""
        signature = self.signer.sign(report_id)
        await self.reports.add_attestation(report_id, self.node_id, signature)
        await self.reports.set_attestation(report_id, ATTESTATION_APPROVED)
        return Verdict(ATTESTATION_APPROVED, signature=signature)
