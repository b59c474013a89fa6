"""chaos-compound-fault: latency on one node and a bandwidth limit on another, at once.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (20/s for 16 s).
3. At 4 s, for 8 s: 1000 ms latency in front of node-200 (a far-away node) and 10 KB/s in
   front of node-300 (a congested link), both through toxiproxy.
4. Final heal, settle.
5. Check: every publish acknowledged, node-100 (unaffected) included; while both faults
   hold every node keeps receiving every originator's envelopes, slowly; after they are
   removed everything catches up within 15 s; convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    AckedDuring,
    At,
    Bandwidth,
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
    name="chaos-compound-fault",
    description="1000 ms latency on node-200 and 10 KB/s on node-300 at once; all converge",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=16),),
    faults=(At(4, Latency("node-200", ms=1000), hold_s=8),
            At(4, Bandwidth("node-300", kbps=10), hold_s=8)),
    expect=(PublishesAcked(), AckedDuring("latency@node-200", ("node-100",), at_least=20),
            ReplicatesDuring("latency@node-200"), ReplicatesDuring("bandwidth@node-300"),
            CatchesUp("latency@node-200", within_s=15),
            CatchesUp("bandwidth@node-300", within_s=15), Converges(within_s=15)),
    settle_s=20,
)
