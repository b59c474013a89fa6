"""churn: a node joins with a fresh identity and another leaves for good while traffic flows
(Logos' dynamic topology).

Joining and leaving are node actions, not faults: the final heal would undo a fault (the
newcomer would leave again, the leaver come back) before the checks.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to node-100 and node-200 (20/s for 32 s) and to node-300 (10/s for 10 s).
3. At 5 s node-400 joins: a fresh identity registered in the NodeRegistry, its own database,
   started, added to the canonical set (payer reports every 2 s too).
4. Once it has joined, publish to it as well (10/s from 14 s to 32 s).
5. At 14 s node-300 leaves for good: once the others hold its envelopes it is taken out of
   the canonical set; the others must stop following it; then 20 envelopes are published to
   it (it still runs, so a node still following it would receive them).
6. Settle.
7. Check: every publish acknowledged; node-400 holds everything acknowledged before it joined
   within 20 s of joining; nobody follows node-300 once it left and none of its later
   envelopes reached a canonical node; within 60 s every envelope of node-100, node-200 and
   node-400 lies inside a settled report, each one's last settled report names the set
   {100, 200, 400} and carries signatures of a quorum of it, and node-400 signed reports and
   had its own settled; the final set converges; history set over node-100, node-200 and
   node-400; verify suite (canonical set expected: 100, 200, 400).
"""

from shakedown.scenarios import At, Converges, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.api import NodeJoin, NodeLeave
from shakedown.scenarios.churn import CatchesUpAfter, LeaverNotFollowed, SettlesAfterChurn

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="churn",
    description="node-400 joins with a fresh identity, node-300 leaves for good, under traffic",
    topology=Topology(nodes=3, gateways=0, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=32, to=("node-100", "node-200")),
              Publish(rate=10, duration_s=10, to=("node-300",), label="leaver"),
              Publish(rate=10, duration_s=18, start_s=14, to=("node-400",), label="newcomer")),
    faults=(At(5, NodeJoin("node-400", **FAST_REPORTS)), At(14, NodeLeave("node-300"))),
    expect=(PublishesAcked(), CatchesUpAfter("node-join@node-400", within_s=20),
            LeaverNotFollowed("node-leave@node-300"),
            SettlesAfterChurn(joined=("node-400",), within_s=60), Converges(within_s=20)),
    settle_s=20,
    verify_args=("--canonical=100,200,400",),
)
