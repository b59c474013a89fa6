"""clock-skew: nodes at +1 s, -1 s and a jittering +-200 ms under traffic (libfaketime);
envelopes are accepted whatever their timestamps, replicas agree, each envelope carries its
originator's skewed clock, and nothing is lost once the clocks are right again (Logos).

The rule: a node accepts an envelope (published to it, or replicated from a peer) whatever
its originator timestamp; envelopes are ordered by (originator, sequence id), never by time.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to every node (30/s for 40 s, 3 workers).
3. At 2 s skew node-100 by +1 s and node-200 by -1 s for 34 s (each node restarts under
   libfaketime, and again when the skew is cleared).
4. From 4 s to 34 s node-300's clock jitters: 8 to 10 s apart (from the seed) it is set to
   one of -200, -100, +100, +200 ms for 6 s (a restart each way).
5. Final heal, settle.
6. Check: node-100 and node-200 acknowledged envelopes while skewed; while both were skewed,
   some moment saw every node holding everything acknowledged 3 s before (envelopes 2 s
   apart in time are accepted and replicated); every acknowledged envelope's originator time
   is its publish call's time shifted by its node's offset then (+-50 ms; 0 outside the
   windows; jittered windows judged where they acknowledged something), read from the stored
   bytes; every node catches up after each skew is cleared; convergence; every node serving;
   within 60 s every acknowledged envelope lies inside a settled payer report (report minutes
   come from skewed clocks); history set; verify suite.
"""

from shakedown.scenarios import (
    AckedDuring,
    At,
    Between,
    CatchesUp,
    Converges,
    NodesServing,
    Publish,
    Scenario,
    Topology,
)
from shakedown.scenarios.payer import ReportsSettled
from shakedown.scenarios.skew import ClockSkew, ReplicasAgreeUnderSkew, TimestampsShowSkew

JITTER_S = (-0.2, -0.1, 0.1, 0.2)
AHEAD, BEHIND = "clock-skew@node-100", "clock-skew@node-200"
FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="clock-skew",
    description="node-100 +1 s, node-200 -1 s, node-300 jittering +-200 ms under traffic",
    topology=Topology(nodes=3, gateways=0,
                      node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=30, duration_s=40, batch=3, workers=3),),
    faults=(At(2, ClockSkew("node-100", 1.0), hold_s=34),
            At(2, ClockSkew("node-200", -1.0), hold_s=34),
            Between(tuple(ClockSkew("node-300", s) for s in JITTER_S), min_delay_s=8,
                    max_delay_s=10, hold_s=6, start_s=4, until_s=34)),
    expect=(AckedDuring(AHEAD, ("node-100",), 30), AckedDuring(BEHIND, ("node-200",), 30),
            ReplicasAgreeUnderSkew((AHEAD, BEHIND), lag_s=3),
            TimestampsShowSkew(nodes=("node-100", "node-200"), slack_s=0.05),
            CatchesUp(AHEAD, within_s=15), CatchesUp(BEHIND, within_s=15),
            Converges(within_s=15), NodesServing(), ReportsSettled(within_s=60)),
    settle_s=20,
)
