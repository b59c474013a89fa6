"""lying-reporter: one node's payer reports disagree with its envelopes; the honest nodes
refuse to attest, the lie never reaches the chain, their own reports still settle, and
verify names the liar.

node-300 runs with ``REFNODE_LIE_IN_REPORTS=fee,range,payers``: each report it creates lies
in turn (one payer charged 1000 picodollars too much; a range ending 3 envelopes early with
the whole range's fees; the first payer's fees put on another payer), it signs its own lie
and asks its peers to attest. Without this scenario no node is ever shown a wrong report, so
a node that attests without comparing would pass everything.

Steps:
1. Deploy 3 nodes (payer reports every 2 s; node-300 lies in its own), no gateway.
2. Publish straight to all three nodes, signed by 2 payers (20/s for 16 s).
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged; convergence; liar-refused: node-100 and node-200
   each rejected at least 3 of node-300's reports and attested none that disagrees with
   their envelopes, node-300's own database shows none submitted, the chain holds no report
   of node-300 that disagrees with the envelopes; honest-reports-settled: every acknowledged
   envelope of node-100 and node-200 is inside a report settled on-chain and mirrored in all
   three databases within 60 s; money conserved; history set; the verify suite flags exactly
   test_reports_agree_with_envelopes on all three nodes, naming node 300, and nothing else.
"""

from shakedown.scenarios import Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.adversaries import HonestReportsSettled, LiarRefused, VerifyFinds
from shakedown.scenarios.payer import MoneyConserved

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}
LIAR = {**FAST_REPORTS, "REFNODE_LIE_IN_REPORTS": "fee,range,payers"}

SCENARIO = Scenario(
    name="lying-reporter",
    description="node-300's payer reports lie (fee, range, payers); its peers refuse to "
                "attest, none reaches the chain, theirs settle",
    topology=Topology(nodes=3, gateways=0,
                      node_env={100: FAST_REPORTS, 200: FAST_REPORTS, 300: LIAR}),
    workload=(Publish(rate=20, duration_s=16, batch=2, payers=2),),
    expect=(PublishesAcked(), Converges(within_s=15), LiarRefused("node-300"),
            HonestReportsSettled("node-300", within_s=60), MoneyConserved(),
            VerifyFinds(findings=tuple((f"test_reports_agree_with_envelopes[node-{n}]",
                                        "of node 300") for n in (100, 200, 300)))),
    settle_s=15,
)
