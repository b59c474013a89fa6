"""stuck-state-detection: with quorum lost, payer reports stay pending, nothing settles and
verify flags them as stuck; once the nodes are back, they are attested, submitted and settled.

Why stopped nodes and not nodes removed from the canonical network: the PayerReportManager
asks n/2+1 of the *current* canonical nodes, so removing nodes shrinks the quorum with them
(4 canonical need 3 signatures; after removing 2 the remaining 2 need 2 and still settle).
Quorum is really lost only while canonical nodes cannot sign: two of four stopped leave 2
signers for a quorum of 3.

Steps:
1. Deploy 4 nodes (payer reports every 2 s), no gateway.
2. Publish straight to node-100 and node-200 (10/s each way, 20/s for 30 s).
3. At 6 s stop node-300 and node-400 (docker stop, one after the other: a few seconds each);
   at 24 s start them again.
4. At 15 s (both stops are done by about 13 s) run the verify suite's stuck check with a 3 s
   threshold (``-m payer -k stuck --report-stuck-after=3``) while both are down.
5. Final heal, settle.
6. Check: every publish acknowledged; nothing-settled-during: no report settled on-chain from
   2 s after both stops until the first restart (settlements placed in time by the chain
   head each 0.5 s sample saw), while envelopes were acknowledged; verify-flagged: the stuck
   check named node-100's and node-200's pending reports; node-300 and node-400 catch up;
   convergence; within 90 s of the checks every acknowledged envelope is inside a settled
   report, mirrored in all four databases; money conserved; history set; the verify suite
   (no report stuck past its default 300 s).
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
from shakedown.scenarios.api import VerifyNow
from shakedown.scenarios.payer import (
    MoneyConserved,
    NothingSettledDuring,
    ReportsSettled,
    VerifyFlagged,
)

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}
DOWN = ("stop@node-300", "stop@node-400")

SCENARIO = Scenario(
    name="stuck-state-detection",
    description="2 of 4 nodes down: no quorum, reports stay pending and are flagged; restored, "
                "they settle",
    topology=Topology(nodes=4, gateways=0,
                      node_env={n: FAST_REPORTS for n in (100, 200, 300, 400)}),
    workload=(Publish(rate=20, duration_s=30, to=("node-100", "node-200")),),
    faults=(At(6, Stop("node-300"), hold_s=18), At(6, Stop("node-400"), hold_s=18),
            At(15, VerifyNow("stuck", "-m", "payer", "-k", "stuck", "--report-stuck-after=3"))),
    expect=(PublishesAcked(), NothingSettledDuring(DOWN),
            VerifyFlagged("verify@stuck", ("test_no_report_stuck[node-100]",
                                           "test_no_report_stuck[node-200]"),
                          "pending submission"),
            CatchesUp("stop@node-300", within_s=25, nodes=("node-300",)),
            CatchesUp("stop@node-400", within_s=25, nodes=("node-400",)),
            Converges(within_s=30), ReportsSettled(within_s=90), MoneyConserved()),
    settle_s=30,
)
