"""disconnect: a node that vanishes without closing its sockets has its streams closed on the
other side, not left hanging; when it comes back, and when a node restarts, the streams
reconnect by themselves.

Steps:
1. Deploy 3 nodes, no gateway.
2. Publish straight to node-100 (20/s for 30 s); every node's GetStatus every
   0.5 s (the streams it serves and follows); node-300 frozen (docker pause: its sockets
   stay open, it answers nothing) from 4 s for 10 s; node-200 stopped from 18 s for 4 s.
3. Final heal, settle.
4. Check: every publish acknowledged; streams-closed(pause@node-300): node-100 and node-200
   closed both their streams with node-300 within 12 s of the freeze; reconnects: both
   streams with node-300 back within 15 s of the unpause, and with node-200 within 15 s of
   its restart; node-300 and node-200 caught up; convergence; every node serving; history
   set; verify suite.
"""

from shakedown.scenarios import (
    At,
    CatchesUp,
    Converges,
    Fault,
    NodesServing,
    Publish,
    PublishesAcked,
    Scenario,
    Stop,
    Topology,
)
from shakedown.scenarios.streams import Reconnects, StatusWatcher, StreamsClosed

SCENARIO = Scenario(
    name="disconnect",
    description="node-300 frozen 10 s: its streams are closed on the other side and come "
                "back by themselves; node-200 restarted: its streams come back too",
    topology=Topology(nodes=3, gateways=0),
    workload=(Publish(rate=20, duration_s=30, to=("node-100",)),
              StatusWatcher(start_s=0, duration_s=34, interval_s=0.5)),
    faults=(At(4, Fault("pause", "node-300"), hold_s=10), At(18, Stop("node-200"), hold_s=4)),
    expect=(PublishesAcked(), StreamsClosed("pause@node-300", within_s=12),
            Reconnects("pause@node-300", within_s=15), Reconnects("stop@node-200", within_s=15),
            CatchesUp("pause@node-300", within_s=15, nodes=("node-300",)),
            Converges(within_s=15), NodesServing()),
    settle_s=15,
)
