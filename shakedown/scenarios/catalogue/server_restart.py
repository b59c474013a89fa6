"""server-restart: the servers the nodes depend on restart under traffic, not the nodes: the
PostgreSQL server holding every node's database, then the chain (td-sync's server restart,
dmsg's reconnect); nodes reconnect by themselves and nothing acknowledged is lost.

The chain keeps its state across a restart (anvil --state, dumped at its SIGTERM).

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to every node (20/s for 36 s, 3 workers).
3. At 5 s stop the database server (docker stop) for 6 s, then start it.
4. At 20 s stop the chain (docker stop) for 6 s, then start it.
5. Final heal, settle.
6. Check: after each restart every node acknowledges publishes again and holds everything
   acknowledged before within 20 s; convergence; within 60 s every acknowledged envelope lies
   inside a payer report settled on-chain (the nodes reach the restarted chain) and mirrored
   in every database; money conserved; every node serving; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    Converges,
    Fault,
    NodesServing,
    Publish,
    Scenario,
    Stop,
    Topology,
)
from shakedown.scenarios.liveness import Recovers
from shakedown.scenarios.payer import MoneyConserved, ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="server-restart",
    description="the database server, then the chain, stopped 6 s each under traffic",
    topology=Topology(nodes=3, gateways=0, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=36, workers=3),),
    faults=(At(5, Fault("db-stop", "db"), hold_s=6), At(20, Stop("chain"), hold_s=6)),
    expect=(Recovers("db-stop@db", within_s=20), Recovers("stop@chain", within_s=20),
            Converges(within_s=20), ReportsSettled(within_s=60), MoneyConserved(),
            NodesServing()),
    settle_s=20,
)
