"""chaos-network-partition: a black-holed node keeps its envelopes; healed, the rest catch up.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (24/s for 14 s); clients reach node-300 directly, not
   through the proxy, so its publishes keep being acknowledged.
3. At 3 s black-hole node-300 (iptables DROP of everything between it and the proxy, both
   ways) for 8 s.
4. Final heal, settle.
5. Check: node-300 acknowledged envelopes while cut off, and no other node received any of
   them until the heal (the blackhole works); after the heal every node holds everything
   within 15 s (they catch up); convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    Blackhole,
    CatchesUp,
    Converges,
    NotReplicatedDuring,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
)

SCENARIO = Scenario(
    name="chaos-network-partition",
    description="node-300 black-holed for 8 s: its envelopes stay there, then replicate",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=24, duration_s=14),),
    faults=(At(3, Blackhole("node-300"), hold_s=8),),
    expect=(PublishesAcked(), NotReplicatedDuring("blackhole@node-300", "node-300"),
            CatchesUp("blackhole@node-300", within_s=15), Converges(within_s=15)),
    settle_s=20,
    tags=("ci",),
)
