"""burst-no-sync: a node with replication off takes a burst of 1,000 envelopes while the
others keep writing; then its replication is turned on (td-sync's burst): all converge,
nothing lost or duplicated.

Turning replication on is what an operator does: the run's inventory gets
``REFNODE_SYNC_ENABLED=1`` for node-300 and is deployed again, which recreates that node only.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway; node-300 with
   REFNODE_SYNC_ENABLED=0 (it pulls from nobody;
   the others still pull from it).
2. Publish straight to node-100 and node-200 (10/s for 24 s).
3. From 2 s publish a burst of 1,000 envelopes to node-300 (batches of 50, as fast as it
   takes them, within 10 s).
4. At 12 s redeploy node-300 with REFNODE_SYNC_ENABLED=1.
5. Settle.
6. Check: the whole burst acknowledged, and every other publish; node-300 pulled nothing
   before the redeploy; within 20 s of it node-300 holds everything acknowledged before;
   convergence; the vector clocks read from every database agree, gap-free; history set
   (nothing lost, nothing stored twice); within 60 s every acknowledged envelope lies inside
   a settled payer report; verify suite.
"""

from shakedown.scenarios import (
    At,
    Converges,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
    VectorClocksAgree,
)
from shakedown.scenarios.api import NodeEnv
from shakedown.scenarios.burst import NothingPulledBefore
from shakedown.scenarios.churn import CatchesUpAfter
from shakedown.scenarios.payer import ReportsSettled

TURN_ON = "node-env@node-300"
FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="burst-no-sync",
    description="node-300 without replication takes 1,000 envelopes, then replication is "
                "turned on",
    topology=Topology(nodes=3, gateways=0, node_env={
        100: FAST_REPORTS, 200: FAST_REPORTS, 300: {**FAST_REPORTS, "REFNODE_SYNC_ENABLED": "0"}}),
    workload=(Publish(rate=10, duration_s=24, to=("node-100", "node-200"), label="steady"),
              Publish(rate=0, duration_s=10, start_s=2, batch=50, to=("node-300",),
                      max_envelopes=1000, workers=2, label="burst")),
    faults=(At(12, NodeEnv("node-300", REFNODE_SYNC_ENABLED="1")),),
    expect=(PublishesAcked("burst", min_acked=1000), PublishesAcked("steady"),
            NothingPulledBefore(TURN_ON), CatchesUpAfter(TURN_ON, within_s=20),
            Converges(within_s=20), VectorClocksAgree(), ReportsSettled(within_s=60)),
    settle_s=20,
)
