"""chaos-node-down: a node stops under traffic, comes back, and catches up.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to node-100 and node-200 (20/s for 16 s).
3. At 4 s stop node-300 (docker stop); at 10 s start it again.
4. Final heal, settle.
5. Check: every publish acknowledged (the live nodes never noticed); node-300 holds every
   envelope acknowledged before its restart within 15 s of it; convergence; every node
   serving; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    NodesServing,
    Publish,
    PublishesAcked,
    Scenario,
    Stop,
    Topology,
)

SCENARIO = Scenario(
    name="chaos-node-down",
    description="node-300 stopped for 6 s under traffic; it restarts and catches up",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=16, to=("node-100", "node-200")),),
    faults=(At(4, Stop("node-300"), hold_s=6),),
    expect=(PublishesAcked(), CatchesUp("stop@node-300", within_s=15, nodes=("node-300",)),
            Converges(within_s=15), NodesServing()),
    settle_s=20,
    tags=("ci",),
)
