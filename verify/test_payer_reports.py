"""Payer-report checks (marker ``payer``): reserved until the payer pipeline (issue #7) lands.

To come here, each reading the databases through ``shakedown.observe`` and the chain through
``shakedown.chain.ops.Chain``:

- no payer report stuck past a threshold (``read_payer_reports_by_status``: none pending
  attestation or submission for longer than the report interval allows);
- submitted reports carry a quorum of attestations (``payer_report_attestations``, n/2+1 of
  the canonical nodes, each signature by the node's registered signer);
- settled reports in every database match the PayerReportManager (``read_settled_reports``
  against ``Chain.get_payer_report``);
- payer balances equal deposits minus settled fees minus withdrawals, and the FeeToken supply
  is conserved (``Chain.payer_registry_totals``, ``Chain.fee_token_supply``);
- settled usage leaves ``unsettled_usage`` (``read_unsettled_usage_per_payer``).

No test is defined until the pipeline produces reports to check.
"""
