"""byzantine-peer: a registered node serves its peers valid-looking but bad streams; the
honest nodes refuse it, keep only its valid envelopes, stay live, and verify names it.

node-300 runs with ``REFNODE_BYZANTINE=equivocate,gap,stale``: its API and storage are
honest, but whenever a peer's replication stream has caught up with its envelopes it serves,
in turn, two different envelopes under the next sequence id (equivocation), an envelope two
ids ahead (a gap), or 20 bursts of stale re-sends, all signed with its registered key.

Steps:
1. Deploy 3 nodes (node-300 byzantine), no gateway.
2. Publish straight to all three nodes, round-robin (30/s for 20 s): node-300 acknowledges
   real envelopes throughout, and keeps lying on its streams.
3. Final heal (nothing to heal), settle.
4. Check: every publish acknowledged; rogue-refused: node-100 and node-200 each refused all
   three misbehaviours and kept the evidence, and nobody accused an honest node;
   valid-prefix-only: they hold exactly node-300's own envelopes, byte for byte, gap-free,
   every acknowledged one, none of the forgeries; convergence; every node serving; history
   set; the verify suite flags exactly test_no_misbehaviour on node-100 and node-200, naming
   node 300 (its evidence re-checked against node 300's registered signer), and nothing else.
"""

from shakedown.scenarios import Converges, NodesServing, Publish, PublishesAcked, Scenario, Topology
from shakedown.scenarios.adversaries import RogueRefused, ValidPrefixOnly, VerifyFinds

ROGUE = {"REFNODE_BYZANTINE": "equivocate,gap,stale"}

SCENARIO = Scenario(
    name="byzantine-peer",
    description="node-300 equivocates, skips and re-sends stale on its streams; its peers "
                "refuse it and keep only its valid envelopes",
    topology=Topology(nodes=3, gateways=0, node_env={300: ROGUE}),
    workload=(Publish(rate=30, duration_s=20, batch=3),),
    expect=(PublishesAcked(), RogueRefused("node-300", ("equivocation", "gap", "stale")),
            ValidPrefixOnly("node-300"), Converges(within_s=15), NodesServing(),
            VerifyFinds(findings=(("test_no_misbehaviour[node-100]", "node 300"),
                                  ("test_no_misbehaviour[node-200]", "node 300")))),
    settle_s=20,
)
