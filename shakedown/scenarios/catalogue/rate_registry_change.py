"""rate-registry-change: new rates appended to the RateRegistry mid-run are picked up by every
node and used in settlement.

Steps:
1. Deploy 3 nodes (payer reports every 2 s).
2. Publish straight to every node, signed by 2 payers (20/s for 18 s).
3. At 6 s append rates to the RateRegistry (message fee 1000 -> 5000, storage fee 1 -> 3),
   in force 3 s later by the nodes' clocks (the action records the start time).
4. Settle: wait for convergence.
5. Check: every publish acknowledged; convergence; every acknowledged envelope inside a report
   settled on-chain and mirrored; charged-at-rates: every envelope in a settled report
   carries the price of the rates in force at its time (either price for 5 s after the
   start, while nodes read the registry), each settlement charged each payer exactly its
   envelopes' fees, and envelopes on both sides of the change were settled; money conserved
   (balances, token supply, fee distribution); history set; verify suite.
"""

from shakedown.scenarios import At, Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.api import SetRates
from shakedown.scenarios.payer import MoneyConserved, ReportsSettled
from shakedown.scenarios.rates import ChargedAtRates

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="rate-registry-change",
    description="rates changed mid-run: envelopes after the change are settled at the new rates",
    topology=Topology(nodes=3, gateways=0, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=18),),
    faults=(At(6, SetRates(start_in_s=3, message_fee=5000, storage_fee=3)),),
    expect=(PublishesAcked(), Converges(within_s=15), ReportsSettled(within_s=60),
            ChargedAtRates("rates-set@chain", pickup_s=5), MoneyConserved()),
    settle_s=15,
)
