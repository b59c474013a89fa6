"""latency-tiers: three groups with links of different quality between them, shaped per
destination (Logos' gossip latency gradient); propagation lag reported per tier, and all
converge after the heal.

Tier A is near (node-100), B farther (node-200), C far (node-300); a link is as good as its
farther end's tier. This kernel has no netem, so the tiers here are bandwidth and loss (tc tbf
and an iptables statistic drop toward the destinations only); on a real kernel
``tiers.DELAY_TIERS`` (10 / 100 / 300 ms, netem per destination) builds the delay tiers the same
way, one fault per direction, for Docker nodes and SSH hosts alike.

Steps:
1. Deploy 3 nodes (payer reports every 2 s), no gateway.
2. Publish straight to every node (30/s for 26 s, 3 workers).
3. At 3 s for 16 s: node-100 <-> node-200 (tier B) at 1000 kbit/s each way; node-300's links
   (tier C) at 100 kbit/s with 3% loss each way; nothing between nodes of one tier (tier A
   has no link quality set).
4. Final heal, settle.
5. Check: every publish acknowledged; while the tiers held every envelope acknowledged up to
   8 s before the heal reached every other node within 8 s, with p50 / p95 / max lag per
   tier reported; after the heal every node holds everything within 15 s; convergence;
   within 60 s every acknowledged envelope lies inside a settled payer report (attestation
   requests cross the tiers too); history set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    Publish,
    PublishesAcked,
    Scenario,
    Topology,
)
from shakedown.scenarios.payer import ReportsSettled
from shakedown.scenarios.tiers import Link, TierLag, tier_faults

GROUPS = {"A": ("node-100",), "B": ("node-200",), "C": ("node-300",)}
HERE = {"B": Link(rate_kbit=1000), "C": Link(rate_kbit=100, loss_pct=3)}
FAULTS = tier_faults(GROUPS, HERE)
FIRST = FAULTS[0].label
FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}

SCENARIO = Scenario(
    name="latency-tiers",
    description="tiers B (1000 kbit/s) and C (100 kbit/s, 3% loss) per destination for 16 s",
    topology=Topology(nodes=3, gateways=0,
                      node_env={n: FAST_REPORTS for n in (100, 200, 300)}),
    workload=(Publish(rate=30, duration_s=26, workers=3),),
    faults=tuple(At(3, f, hold_s=16) for f in FAULTS),
    expect=(PublishesAcked(), TierLag(GROUPS, FIRST, max_lag_s=8),
            CatchesUp(FIRST, within_s=15), Converges(within_s=15), ReportsSettled(within_s=60)),
    settle_s=20,
)
