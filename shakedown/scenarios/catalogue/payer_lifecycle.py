"""payer-lifecycle: publishes become payer reports that are attested, submitted and settled.

Steps:
1. Deploy 3 nodes (payer reports every 2 s) and 1 gateway.
2. Publish through the gateway (20/s for 8 s), so the gateway's payer pays.
3. Settle: wait for convergence.
4. Check: every publish acknowledged; convergence; within 60 s every acknowledged envelope of
   every originator lies inside a report settled on-chain and each node's database shows it
   settled; history set; the verify suite (its payer checks: quorum of valid attestations,
   settled rows match the chain, balances and token supply add up).
"""

from shakedown.scenarios import Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.payer import ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="payer-lifecycle",
    description="usage becomes payer reports: attested by a quorum, submitted, settled",
    topology=Topology(nodes=3, gateways=1, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=8, via="gateway"),),
    expect=(PublishesAcked(), Converges(within_s=15), ReportsSettled(within_s=60)),
    settle_s=15,
    tags=("ci",),
)
