"""multi-payer: envelopes paid by four payers are charged to each payer separately.

Steps:
1. Deploy 3 nodes (payer reports every 2 s) and 1 gateway.
2. Publish straight to every node, signed round-robin by 4 payers (20/s for 8 s).
3. Settle: wait for convergence.
4. Check: every publish acknowledged; convergence; every acknowledged envelope inside a report
   settled on-chain and mirrored in every database; the verify suite, whose payer and usage
   checks hold each payer to exactly its own envelopes (unsettled usage per payer, each
   payer's balance = deposits - its settled fees, settled usage adds up per report).
"""

from shakedown.scenarios import Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.payer import ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="multi-payer",
    description="four payers; each is charged on-chain for exactly its own envelopes",
    topology=Topology(nodes=3, gateways=1, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=8, payers=4, batch=2),),
    expect=(PublishesAcked(), Converges(within_s=15), ReportsSettled(within_s=60)),
    settle_s=15,
)
