"""sustained-load: a steady load through the gateway for longer; nothing stuck or lost.

Steps:
1. Deploy 3 nodes (payer reports every 2 s) and 1 gateway.
2. Publish through the gateway, 50/s for 40 s (edit ``duration_s`` for a longer soak).
3. Settle: wait for convergence.
4. Check: every publish acknowledged; convergence; every acknowledged envelope inside a report
   settled on-chain and mirrored in every database (no report stuck); history set (nothing
   lost or duplicated); verify suite.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.payer import ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="sustained-load",
    description="50/s through the gateway for 40 s with reports every 2 s: none stuck, none lost",
    topology=Topology(nodes=3, gateways=1, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=50, duration_s=40, via="gateway", batch=5),),
    expect=(PublishesAcked(), Converges(within_s=20), ReportsSettled(within_s=90),
            NodesServing()),
    settle_s=20,
)
