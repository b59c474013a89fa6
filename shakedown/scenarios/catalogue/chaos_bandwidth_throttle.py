"""chaos-bandwidth-throttle: every node's link throttled at once; slow, never stuck.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (20/s for 16 s).
3. At 4 s throttle the proxies of all three nodes to 2 KB/s (toxiproxy bandwidth) for 7 s,
   like a provider-wide network incident.
4. Final heal, settle.
5. Check: every publish acknowledged; envelopes keep getting through while throttled; after
   the throttle is removed every node catches up within 15 s; no node crashed or got stuck
   (all serving); convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    Bandwidth,
    CatchesUp,
    Converges,
    NodesServing,
    Publish,
    PublishesAcked,
    ReplicatesDuring,
    Scenario,
    Topology,
)

ALL = "node-100,node-200,node-300"

SCENARIO = Scenario(
    name="chaos-bandwidth-throttle",
    description="all nodes throttled to 2 KB/s for 7 s; envelopes still flow, then catch up",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=16),),
    faults=(At(4, Bandwidth(ALL, kbps=2), hold_s=7),),
    expect=(PublishesAcked(), ReplicatesDuring(f"bandwidth@{ALL}"),
            CatchesUp(f"bandwidth@{ALL}", within_s=15), NodesServing(), Converges(within_s=15)),
    settle_s=20,
)
