"""aggressive-chaos: frequent restarts and kill -9s of every node under traffic for a few
minutes, Logos' way (a random delay between a min and a max, a cooldown per target); the
network stays live and every acknowledged envelope is delivered exactly once.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to every node (20/s for 150 s, 3 workers).
3. From 5 s to 145 s: every 6 to 12 s (from the seed) pick a node not faulted now nor in the
   15 s after its last fault, and either restart it (docker restart) or kill -9 it and start
   it 4 s later.
4. Final heal, settle.
5. Check: never 5 s without an acknowledged publish; after each restart or kill the node
   acknowledges publishes again and holds everything acknowledged before, within 30 s, at
   least 8 times; convergence; every node serving; history set (exactly once: nothing lost,
   duplicated or changed); within 90 s every acknowledged envelope lies inside a settled
   payer report; verify suite.
"""

from shakedown.scenarios import (
    Between,
    Converges,
    Fault,
    Kill,
    NodesServing,
    Publish,
    Scenario,
    Topology,
)
from shakedown.scenarios.liveness import EachRecovers, Liveness
from shakedown.scenarios.payer import ReportsSettled

NODES = ("node-100", "node-200", "node-300")
FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="aggressive-chaos",
    description="restarts and kill -9s every 6-12 s (15 s cooldown per node) for 150 s",
    topology=Topology(nodes=3, gateways=0,
                      node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=150, workers=3),),
    faults=(Between((*(Fault("restart", n) for n in NODES), *(Kill(n) for n in NODES)),
                    min_delay_s=6, max_delay_s=12, hold_s=4, cooldown_s=15, start_s=5,
                    until_s=145),),
    expect=(Liveness(max_stall_s=5), EachRecovers(("restart", "kill"), within_s=30, at_least=8),
            Converges(within_s=30), NodesServing(), ReportsSettled(within_s=90)),
    settle_s=30,
)
