"""api-flood: a few clients flood one node's API with valid and malformed calls; the node
refuses what is over each client's rate and every malformed call, keeps answering its other
clients within a stated latency, replication and payer reports are unaffected, and it
reports its counts.

node-100 runs with ``REFNODE_RATE_LIMIT=50`` (publish and query calls per second per
connection; the default, 2000, is above any workload of the catalogue).

Steps:
1. Deploy 3 nodes with payer reports every 2 s, no gateway.
2. Publish straight to all three nodes (20/s for 18 s); from 1 s a probe client queries
   node-100 every 0.1 s on its own connection; from 3 s, 2 flood connections send 100
   calls/s each at node-100 for 12 s (twice their rate limit; at most 20,000 calls each): a
   valid query, a query that does not parse, a publish that does not parse, in turn.
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged; flood-withstood: at least 1,500 flood calls, some
   refused RESOURCE_EXHAUSTED, every malformed one refused (INVALID_ARGUMENT, or over the
   rate), the probe answered OK each time with p99 <= 500 ms, node-100's GetStatus counts
   its refusals (reported); convergence; payer reports settled; every node serving; history
   set; verify suite.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.flood import FloodAgent, FloodWithstood, LatencyProbe
from shakedown.scenarios.payer import ReportsSettled

FAST_REPORTS = {"REFNODE_REPORT_INTERVAL_S": "2"}
LIMITED = {**FAST_REPORTS, "REFNODE_RATE_LIMIT": "50"}

SCENARIO = Scenario(
    name="api-flood",
    description="2 connections flood node-100 with valid and malformed calls; it refuses "
                "them over its rate and keeps serving its other clients",
    topology=Topology(nodes=3, gateways=0,
                      node_env={100: LIMITED, 200: FAST_REPORTS, 300: FAST_REPORTS}),
    workload=(Publish(rate=20, duration_s=18),
              LatencyProbe(target="node-100", start_s=1, duration_s=16),
              FloodAgent(target="node-100", start_s=3, duration_s=12, connections=2,
                         rate=200)),
    expect=(PublishesAcked(), FloodWithstood(p99_ms=500, min_calls=1_500), Converges(within_s=15),
            ReportsSettled(within_s=60), NodesServing()),
    settle_s=15,
)
