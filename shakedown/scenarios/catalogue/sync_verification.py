"""sync-verification: all nodes agree on the latest sequence id of every originator.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node, round-robin (30/s for 5 s, batches of 5, 2 payers).
3. Settle: wait until the vector clocks are equal.
4. Check: every publish acknowledged; convergence within 10 s; the vector clock computed
   from each node's stored envelopes is the same on every node, gap-free, and covers every
   acknowledged envelope; history set; verify suite.
"""

from shakedown.scenarios import (
    Converges,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
    VectorClocksAgree,
)

SCENARIO = Scenario(
    name="sync-verification",
    description="publishes to every node; the vector clocks read from every database agree",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=30, duration_s=5, batch=5, payers=2),),
    expect=(PublishesAcked(min_acked=100), Converges(within_s=10), VectorClocksAgree()),
    settle_s=10,
    tags=("ci",),
)
