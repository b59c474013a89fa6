"""chaos-latency: 500 ms on a node's proxy slows replication from it but does not stop it.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (20/s for 14 s).
3. At 4 s add 500 ms latency (toxiproxy) in front of node-200 for 6 s: the other nodes pull
   node-200's envelopes through it.
4. Final heal, settle.
5. Check: every publish acknowledged; while the latency holds every node keeps receiving
   every originator's envelopes; after it is removed every node holds everything acked
   before within 10 s; convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    Latency,
    Publish,
    PublishesAcked,
    ReplicatesDuring,
    Scenario,
    Topology,
)

SCENARIO = Scenario(
    name="chaos-latency",
    description="500 ms latency in front of node-200 under traffic; delivery continues, recovers",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=14),),
    faults=(At(4, Latency("node-200", ms=500), hold_s=6),),
    expect=(PublishesAcked(), ReplicatesDuring("latency@node-200"),
            CatchesUp("latency@node-200", within_s=10), Converges(within_s=15)),
    settle_s=20,
)
