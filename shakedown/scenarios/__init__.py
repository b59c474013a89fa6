"""Scenarios: deploy, traffic, faults and verify tied into one command (DESIGN section 7).

A scenario is data (``api``): topology, workload, fault schedule, expectations. The runner
(``runner.run_scenario``) owns the lifecycle and writes a run directory (``report``); the
catalogue holds one module per scenario. ``shakedown list`` / ``shakedown run NAME`` use them.
"""

from shakedown.scenarios.api import (
    Action,
    AddGateway,
    At,
    Bandwidth,
    Between,
    Blackhole,
    Fault,
    Kill,
    Latency,
    Partition,
    Publish,
    Ramp,
    RemoveGateway,
    ResetPeer,
    Scenario,
    Stop,
    Topology,
)
from shakedown.scenarios.expectations import (
    AckedDuring,
    CatchesUp,
    Check,
    Converges,
    Expectation,
    HistorySet,
    NodesServing,
    NotReplicatedDuring,
    PublishesAcked,
    ReplicatesDuring,
    SustainableRate,
    TargetsCarried,
    ThroughputRecovers,
    VectorClocksAgree,
)

__all__ = [
    "AckedDuring", "Action", "AddGateway", "At", "Bandwidth", "Between", "Blackhole",
    "CatchesUp", "Check", "Converges", "Expectation", "Fault", "HistorySet", "Kill", "Latency",
    "NodesServing", "NotReplicatedDuring", "Partition", "Publish", "PublishesAcked", "Ramp",
    "RemoveGateway", "ReplicatesDuring", "ResetPeer", "Scenario", "Stop", "SustainableRate",
    "TargetsCarried", "ThroughputRecovers", "Topology", "VectorClocksAgree",
]
