"""Payer-report hashing and signing, byte for byte what PayerReportManager checks.

The fields, hashes and digest are refnode's own (``refnode.report_spec``), so the node, the
tests and verify derive them alike; this module adds signing with an eth-account key.

    domain = chain.report_domain()              # chain id + PayerReportManager address
    payers, fees = sorted_payers({"0xAbc...": 600, "0xDef...": 401})
    spec = PayerReportSpec(100, 0, 42, 29_000_000, payers_hash(payers, fees), (100, 200, 300))
    signature = spec.sign(node_signer, domain)  # 65 bytes, v = 27/28
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from refnode.report_spec import ReportDomain, ReportSpec, payers_hash, sorted_payers

__all__ = ["PayerReportSpec", "ReportDomain", "payers_hash", "sorted_payers"]


@dataclass(frozen=True)
class PayerReportSpec(ReportSpec):
    """A report's signed fields, signable with an eth-account key."""

    def sign(self, signer: LocalAccount, domain: ReportDomain) -> bytes:
        """The 65-byte r || s || v attestation by ``signer`` for the deployment ``domain``."""
        signed = signer.sign_message(encode_defunct(primitive=self.inner_hash(domain)))
        return bytes(signed.signature)
