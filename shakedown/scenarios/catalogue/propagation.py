"""propagation: the same batch of client envelopes submitted to every node in its own random
order and from its own random offset (Logos' transaction propagation); each is stored once
per originator it went to and every node ends with the same set.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. From 1 s: 120 client envelopes, the same bytes for every node; each node gets all of them
   in an order drawn from the seed, starting at an offset in [0, 3] s, in calls of 10 up to
   0.4 s apart (payer envelopes signed by 2 payers, each addressed to its node).
3. Settle.
4. Check: every publish acknowledged; on every node each client envelope is stored exactly
   once under each originator that acknowledged it, under no other, and every node holds
   the same envelopes byte for byte; convergence; history set (a client envelope sent to
   three nodes is three envelopes, not a duplicate); within 60 s every acknowledged
   envelope lies inside a settled payer report (each copy paid for once); verify suite.
"""

from shakedown.scenarios import Converges, PublishesAcked, Scenario, Topology
from shakedown.scenarios.payer import ReportsSettled
from shakedown.scenarios.propagation import Propagate, StoredOncePerOriginator

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="propagation",
    description="one batch of 120 client envelopes to all 3 nodes in random orders and offsets",
    topology=Topology(nodes=3, gateways=0,
                      node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Propagate(batch=120, to=("node-100", "node-200", "node-300"), spread_s=3),),
    expect=(PublishesAcked(min_acked=360), StoredOncePerOriginator("propagate"),
            Converges(within_s=15), ReportsSettled(within_s=60)),
    settle_s=15,
    tags=("ci",),
)
