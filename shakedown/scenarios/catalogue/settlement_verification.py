"""settlement-verification: what every node's database says was submitted and settled is
what the PayerReportManager holds, field by field.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to every node, signed by 2 payers (20/s for 8 s).
3. Settle: wait for convergence.
4. Check: every publish acknowledged; convergence; settled-matches-chain: within 60 s every
   acknowledged envelope lies inside a report settled on-chain, and each node's
   payer_reports holds every submitted and settled report with the chain's originator,
   sequence range, end minute, payers hash, node ids and settled flag (and none the chain
   lacks); money conserved; history set; verify suite.
"""

from shakedown.scenarios import Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.payer import MoneyConserved, SettledMatchesChain

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="settlement-verification",
    description="every node's settled payer reports match the chain, field by field",
    topology=Topology(nodes=3, gateways=0, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=8),),
    expect=(PublishesAcked(), Converges(within_s=15), SettledMatchesChain(within_s=60),
            MoneyConserved()),
    settle_s=15,
)
