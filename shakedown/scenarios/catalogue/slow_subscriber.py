"""slow-subscriber: a replication subscriber of node-100 stops reading; the node's publish
path and its other subscribers (its peers) go on as if it were not there, the subscriber
falls behind its bounded buffer, and once it reads again it gets everything, gap-free.

node-100 runs with ``REFNODE_SUBSCRIBER_BUFFER=100`` (envelopes held for one subscriber
before it falls behind and reads the database again at its own pace).

Steps:
1. Deploy 3 nodes, no gateway.
2. Publish straight to node-100 (200/s in batches of 5 for 24 s); from 2 s a subscriber
   follows node-100's envelopes from the start on a small HTTP/2 window, reads one message,
   reads nothing for 12 s (about 2,400 envelopes arrive meanwhile: more than the proxy and
   socket buffers between them hold), then reads on until 26 s.
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged; slow-subscriber-isolated: node-100 acknowledged
   publishes throughout the stall (no gap over 5 s), node-200 and node-300 held what it
   acked 5 s earlier, node-100 reported the subscriber behind its buffer, and the
   subscriber then got 1.. every acked envelope in one run; convergence; every node
   serving; history set; verify suite.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.streams import SlowSubscriber, SlowSubscriberIsolated

SCENARIO = Scenario(
    name="slow-subscriber",
    description="a subscriber of node-100 stops reading for 12 s; the publish path and the "
                "other subscribers go on, it falls behind and then gets everything",
    topology=Topology(nodes=3, gateways=0, node_env={100: {"REFNODE_SUBSCRIBER_BUFFER": "100"}}),
    workload=(Publish(rate=200, duration_s=24, to=("node-100",), batch=5),
              SlowSubscriber(target="node-100", start_s=2, duration_s=24, stall_s=12)),
    expect=(PublishesAcked(), SlowSubscriberIsolated(max_gap_s=5, lag_s=5),
            Converges(within_s=15), NodesServing()),
    settle_s=15,
)
