"""invalid-envelope-fuzz: property-based malformed and adversarial publish requests at one
node; every one is refused with the right gRPC status, none is stored anywhere, the node
keeps serving.

A Hypothesis strategy (``shakedown.scenarios.fuzz.cases``, seeded by the run's seed) draws
14 kinds of bad request: signatures no key can have made (wrong length, v out of range, high
s, r or s zero, r beyond the curve order), a wrong target, a request or a client envelope
cut short, an envelope over 1 MiB, a request over the node's 8 MiB limit, a node's own key
as payer, a replay of a stored envelope, an envelope twice in one batch, more than 10,000
envelopes, none, no topic, retention out of 1..3650 days, random bytes. Bad envelopes often
ride behind valid ones: the whole batch must be refused.

Steps:
1. Deploy 3 nodes, no gateway.
2. Publish straight to node-100 (20/s for 30 s); from 1 s, the fuzz agent publishes 5 valid
   envelopes (the replays' originals), then sends 150 drawn cases to node-100 at up to 20/s
   (for 40 s at most).
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged (the node kept serving); fuzz-rejected: at least 100
   cases, every kind drawn, publishes acknowledged while they were sent, each answered
   with its status (INVALID_ARGUMENT, PERMISSION_DENIED for a node's key, ALREADY_EXISTS for
   replays, RESOURCE_EXHAUSTED over the size limit), none of what they carried stored on any
   node and every replayed envelope stored once; convergence; every node serving; history
   set; verify suite.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.fuzz import FuzzAgent, FuzzRejected

SCENARIO = Scenario(
    name="invalid-envelope-fuzz",
    description="Hypothesis-drawn malformed envelopes at node-100: each refused with its "
                "status, none stored, the node keeps serving",
    topology=Topology(nodes=3, gateways=0),
    workload=(Publish(rate=20, duration_s=30, to=("node-100",)),
              FuzzAgent(target="node-100", start_s=1, duration_s=40, max_cases=150, rate=20)),
    expect=(PublishesAcked(), FuzzRejected(min_cases=100), Converges(within_s=15),
            NodesServing()),
    settle_s=15,
)
