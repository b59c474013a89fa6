"""thundering-herd: every node writes alone, then all sync at the same instant (td-sync).

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Black-hole all three nodes at 0.5 s (none can reach another) for 8 s.
3. Meanwhile publish a burst straight to every node (90/s for 7 s from 1 s: about 200
   envelopes per node, none of which can replicate).
4. At 8.5 s heal all at once: every node subscribes to every other at the same moment and
   pulls the others' backlog simultaneously.
5. Final heal, settle.
6. Check: every publish acknowledged; each node acknowledged at least 150 envelopes while
   isolated; every node holds everything within 15 s of the heal; convergence; every node
   serving; history set (no duplicate, no gap, byte for byte); verify suite.
"""

from shakedown.scenarios import (
    AckedDuring,
    At,
    Blackhole,
    CatchesUp,
    Converges,
    NodesServing,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
)

ALL = "node-100,node-200,node-300"
WINDOW = f"blackhole@{ALL}"

SCENARIO = Scenario(
    name="thundering-herd",
    description="all nodes isolated while a burst lands on each; healed at once, all converge",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=90, duration_s=7, start_s=1, batch=10),),
    faults=(At(0.5, Blackhole(ALL), hold_s=8),),
    expect=(PublishesAcked(), AckedDuring(WINDOW, ("node-100", "node-200", "node-300"), 150),
            CatchesUp(WINDOW, within_s=15), Converges(within_s=15), NodesServing()),
    settle_s=20,
)
