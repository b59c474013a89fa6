"""chaos-connection-reset: TCP resets on a node's proxy; reconnection and catch-up.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node (20/s for 14 s).
3. At 4 s make node-200's proxy reset every connection at once (toxiproxy reset_peer,
   timeout 0) for 6 s: the other nodes' subscriptions to node-200 break and their
   reconnects are reset too.
4. Final heal, settle.
5. Check: every publish acknowledged (traffic continues despite the resets); after the
   resets stop every node holds everything acked before within 15 s; convergence; history
   set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    Publish,
    PublishesAcked,
    ResetPeer,
    Scenario,
    Topology,
)

SCENARIO = Scenario(
    name="chaos-connection-reset",
    description="connections to node-200 reset for 6 s under traffic; nodes reconnect, catch up",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=14),),
    faults=(At(4, ResetPeer("node-200"), hold_s=6),),
    expect=(PublishesAcked(), CatchesUp("reset-peer@node-200", within_s=15),
            Converges(within_s=15)),
    settle_s=20,
)
