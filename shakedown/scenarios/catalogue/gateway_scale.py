"""gateway-scale: gateways added and removed while traffic flows through them.

Steps:
1. Deploy 3 nodes and 1 gateway ("gateway").
2. Publish through the live gateways, round-robin (20/s for 16 s, batches of 5); each
   gateway pays for what it carries and picks the node.
3. At 3 s start gateway-1, at 6 s gateway-2 (each with its own payer key; traffic moves to
   it once it answers health); at 10 s remove gateway-1 and at 13 s the original gateway
   (traffic leaves a gateway first, its calls in flight drain, then it is removed).
4. Final heal, settle.
5. Check: every publish acknowledged (no error while gateways came and went); each of the
   three gateways carried traffic; convergence; history set; verify suite.
"""

from shakedown.scenarios import (
    AddGateway,
    At,
    Converges,
    Publish,
    PublishesAcked,
    RemoveGateway,
    Scenario,
    TargetsCarried,
    Topology,
)

SCENARIO = Scenario(
    name="gateway-scale",
    description="gateways added and removed under traffic without a failed publish",
    topology=Topology(nodes=3, gateways=1),
    workload=(Publish(rate=20, duration_s=16, batch=5, via="gateway"),),
    faults=(At(3, AddGateway("gateway-1")), At(6, AddGateway("gateway-2")),
            At(10, RemoveGateway("gateway-1")), At(13, RemoveGateway("gateway"))),
    expect=(PublishesAcked(), TargetsCarried(("gateway", "gateway-1", "gateway-2")),
            Converges(within_s=15)),
    settle_s=20,
)
