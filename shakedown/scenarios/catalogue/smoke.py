"""smoke: the cluster works at all.

Steps:
1. Deploy 3 nodes (100, 200, 300) and 1 gateway.
2. Publish 60 envelopes through the gateway (20/s for 3 s, batches of 5); the gateway pays
   and picks the node round-robin.
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged; every node holds every acknowledged envelope within
   10 s (equal vector clocks); every node serving; history set; verify suite.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology

SCENARIO = Scenario(
    name="smoke",
    description="3 nodes + 1 gateway: 60 envelopes through the gateway replicate to every node",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=3, batch=5, via="gateway"),),
    expect=(PublishesAcked(min_acked=50), Converges(within_s=10), NodesServing()),
    settle_s=10,
    tags=("ci",),
)
