"""The fuzz agent against a real node: every drawn case is refused with its expected status and
none of it is stored; against a node that does not check payer signatures, the expectation
names the bad-signature cases it took."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from refnode.envelopes import Signer
from shakedown.client import payer_envelopes
from shakedown.keys import payer
from shakedown.procs.cluster import ProcessCluster
from shakedown.scenarios import Scenario
from shakedown.scenarios.agents import AgentContext, agent_outcome, record_publish, run_agent
from shakedown.scenarios.fuzz import EXPECTED, FuzzAgent, FuzzRejected
from shakedown.scenarios.history import History, read_history
from shakedown.scenarios.probe import Probe
from shakedown.scenarios.view import RunView

CASES = 120
PAYER = Signer(bytes(payer(0).key))


def fuzz(cluster: ProcessCluster, node: int, tmp_path: Path) -> RunView:
    proc = cluster.nodes[node]
    name = f"node-{node}"
    history = History(tmp_path / "history.jsonl")
    history.info("phase", phase="workload", state="start")
    started = time.monotonic()
    record = {"nodes": [{"name": name, "grpc": proc.endpoint, "node_id": node}]}
    ctx = AgentContext(record, history, threading.Event(), lambda: time.monotonic() - started,
                       lambda _: None)
    fuzzing = threading.Thread(target=run_agent, args=(
        FuzzAgent(target=name, max_cases=CASES, rate=200, duration_s=300), ctx))
    fuzzing.start()
    with proc.client() as client:  # other traffic meanwhile: the node keeps serving
        while fuzzing.is_alive():
            record_publish(history, "publish", name, node, payer_envelopes(PAYER, node, 2),
                           client.publish)
            fuzzing.join(timeout=0.2)
    history.close()
    events = read_history(tmp_path / "history.jsonl")
    assert agent_outcome(events, "fuzz")["type"] == "ok", agent_outcome(events, "fuzz")
    probe = Probe({name: proc.env["REFNODE_DB_DSN"]})
    try:
        stores = {name: probe.store(name)}
    finally:
        probe.close()
    return RunView.from_history(Scenario(name="t", description="t"), events,
                                nodes={name: node}, stores=stores)


def test_every_fuzz_case_is_refused_as_expected_and_nothing_stored(
        cluster: ProcessCluster, tmp_path: Path) -> None:
    node = cluster.add_node()
    view = fuzz(cluster, node, tmp_path)
    check = FuzzRejected(min_cases=CASES).check(view)
    assert check.status == "pass", check.message
    assert set(check.details["answers"]) == set(EXPECTED)
    assert check.details["acked_during"] > 0
    acked = sum(len(c.acks) for c in view.calls)
    assert len(view.stores[f"node-{node}"]) == acked, "only what was acknowledged"


def test_a_node_that_does_not_check_signatures_fails_the_fuzz(
        cluster: ProcessCluster, tmp_path: Path) -> None:
    node = cluster.add_node({"REFNODE_CHECK_PAYER_SIGNATURES": "0"})
    check = FuzzRejected(min_cases=CASES).check(fuzz(cluster, node, tmp_path))
    assert check.status == "fail"
    assert "bad-signature:" in check.message and "OK x" in check.message, check.message
    assert f"node-{node} stored" in check.message, check.message
