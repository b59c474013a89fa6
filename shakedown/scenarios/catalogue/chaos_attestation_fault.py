"""chaos-attestation-fault: one of three nodes is down; a quorum of two still settles, and
the node mirrors the settled reports once it is back.

Steps:
1. Deploy 3 nodes (payer reports every 2 s) and 1 gateway.
2. Publish straight to node-100 and node-200 (20/s for 16 s).
3. At 3 s stop node-300 (docker stop); at 11 s start it again.
4. Final heal, settle.
5. Check: every publish acknowledged; node-300 catches up; convergence; within 60 s every
   acknowledged envelope lies inside a settled report, mirrored in every database, node-300's
   included; history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    Publish,
    PublishesAcked,
    Scenario,
    Stop,
    Topology,
)
from shakedown.scenarios.payer import ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="chaos-attestation-fault",
    description="node-300 down for 8 s: reports settle with a quorum of 2, then it mirrors them",
    topology=Topology(nodes=3, gateways=1, node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=20, duration_s=16, to=("node-100", "node-200")),),
    faults=(At(3, Stop("node-300"), hold_s=8),),
    expect=(PublishesAcked(), CatchesUp("stop@node-300", within_s=20, nodes=("node-300",)),
            Converges(within_s=20), ReportsSettled(within_s=60)),
    settle_s=20,
)
