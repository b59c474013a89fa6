"""partition-recovery: both sides of a partition write, then sync and converge (td-sync).

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (36/s for 12 s: about 12/s per node).
3. At 1 s partition node-100 from node-200 and node-300 (iptables, symmetric) for 9 s: both
   sides keep accepting publishes without syncing across.
4. Final heal, settle.
5. Check: every node acknowledged at least 50 envelopes while partitioned; node-100's
   envelopes did not cross the partition; after the heal both sides hold everything within
   15 s; convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    AckedDuring,
    At,
    CatchesUp,
    Converges,
    NotReplicatedDuring,
    Partition,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
)

WINDOW = "partition@node-100"

SCENARIO = Scenario(
    name="partition-recovery",
    description="node-100 | node-200,node-300 for 9 s, both sides write; heal and converge",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=36, duration_s=12, batch=6),),
    faults=(At(1, Partition("node-100", others="node-200,node-300"), hold_s=9),),
    expect=(PublishesAcked(), AckedDuring(WINDOW, ("node-100", "node-200", "node-300"), 50),
            NotReplicatedDuring(WINDOW, "node-100"), CatchesUp(WINDOW, within_s=15),
            Converges(within_s=15)),
    settle_s=20,
)
