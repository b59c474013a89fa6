"""load-progression: find the highest publish rate the testnet sustains.

Steps:
1. Deploy 3 nodes and 1 gateway.
2. Publish straight to every node at 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600,
   800, 1200, 1600, 2400 and 3200 envelopes/s, 3 s per rate. After each step wait up to 3 s
   for every node to hold every envelope acknowledged so far. A step is sustained when at
   least 90% of its envelopes were acknowledged, none failed, and replication caught up;
   the ramp stops at the first step that is not.
3. Settle.
4. Check: the last sustained rate (reported as the metric sustainable_rate) is at least
   20/s; history set; verify suite.
"""

from shakedown.scenarios import Ramp, Scenario, SustainableRate, Topology

SCENARIO = Scenario(
    name="load-progression",
    description="rates 5, 10, 20, 30... until one is not sustained; reports the sustainable rate",
    topology=Topology(nodes=3, gateways=1),
    workload=(Ramp(rates=(5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600,
                          2400, 3200),
                   step_s=3, catch_up_s=3),),
    expect=(SustainableRate(at_least=20),),
    settle_s=20,
)
