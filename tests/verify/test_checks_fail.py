"""Each verify check fails, alone, on the corruption it exists for; the suite runs as a user
runs it (a subprocess) and its JSON summary is read.

One testnet for the module (traffic from every node and the gateway); each test corrupts real
state (SQL on a node's database, anvil, the proxy's API, the engine), runs the suite, and puts
the state back even when it fails. The first test shows the clean testnet passes; the last
that the state was put back. Every assertion demands the named check fail with a message
naming node, originator and sequence where there are any, and every other check pass.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import docker

from shakedown.chain.records import Rates
from shakedown.keys import node_signer
from tests.deploy.testnets import Net
from tests.verify import corrupt
from tests.verify.suite import Summary

Verify = Callable[..., Summary]
ALL_NODES = ("node-100", "node-200", "node-300")


def each(check: str, *nodes: str) -> set[str]:
    return {f"{check}[{n}]" for n in nodes}


def test_clean_testnet_passes_with_json_and_junit(verify: Verify, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = verify(f"--junitxml={junit}")
    assert result.process.returncode == 0, result.process.stdout[-3000:]
    assert result.failed() == set() and result.data["passed"] is True
    assert set(result.checks) == {
        "test_contracts_deployed", "test_canonical_set", "test_converged",
        "test_no_fault_left_behind", *each("test_node_registered", *ALL_NODES),
        *each("test_node_info_matches_chain", *ALL_NODES),
        *each("test_no_sequence_gaps", *ALL_NODES), *each("test_signatures_valid", *ALL_NODES),
        *each("test_unsettled_usage_priced", *ALL_NODES),
        *each("test_no_report_stuck", *ALL_NODES), *each("test_reports_have_quorum", *ALL_NODES),
        *each("test_settled_reports_match_chain", *ALL_NODES),
        *each("test_no_misbehaviour", *ALL_NODES),
        *each("test_reports_agree_with_envelopes", *ALL_NODES),
        "test_payer_balances", "test_fee_token_supply", "test_fee_distribution"}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("37", "0", "0")
    names = {case.get("name") for case in suite.iter("testcase")}
    assert names == set(result.checks)


def test_junit_names_the_failing_check(net: Net, verify: Verify, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with corrupt.altered_spend(net, 200, 7):
        verify(f"--junitxml={junit}")
    failing = {case.get("name"): case.find("failure") for case in ET.parse(junit).iter("testcase")}
    assert {n for n, f in failing.items() if f is not None} == {
        "test_unsettled_usage_priced[node-200]"}
    assert "node-200: payer" in (failing["test_unsettled_usage_priced[node-200]"].get("message")
                                 or "")


def test_markers_pick_groups(verify: Verify) -> None:
    chain = verify("-m", "chain")
    assert {c["check"] for c in chain.checks.values()} == {
        "test_contracts_deployed", "test_node_registered", "test_canonical_set",
        "test_node_info_matches_chain"}
    both = verify("-m", "replication or faults")
    assert {c["check"] for c in both.checks.values()} == {
        "test_converged", "test_no_sequence_gaps", "test_no_misbehaviour",
        "test_no_fault_left_behind"}
    unknown = verify("-m", "replicaton")
    assert unknown.process.returncode == 4, unknown.process.stdout + unknown.process.stderr
    assert "unknown group 'replicaton'" in unknown.process.stderr + unknown.process.stdout


def test_an_unreachable_database_is_named_without_its_password(net: Net, verify: Verify,
                                                               tmp_path: Path) -> None:
    record = net.record()
    record["nodes"][1]["dsn"] = record["nodes"][1]["dsn"].replace(
        f":{net.port_base + 2}/", ":1/")
    elsewhere = tmp_path / "record.json"
    elsewhere.write_text(json.dumps(record))
    result = verify(f"--record={elsewhere}")
    unreachable = "node-200: database postgresql://postgres:***@127.0.0.1:1/node_200 unreachable"
    result.only_failed({"test_converged", *each("test_node_info_matches_chain", "node-200"),
                        *each("test_no_sequence_gaps", "node-200"),
                        *each("test_signatures_valid", "node-200"),
                        *each("test_unsettled_usage_priced", "node-200"),
                        *each("test_no_report_stuck", "node-200"),
                        *each("test_reports_have_quorum", "node-200"),
                        *each("test_settled_reports_match_chain", "node-200"),
                        *each("test_no_misbehaviour", "node-200"),
                        *each("test_reports_agree_with_envelopes", "node-200")}, unreachable)
    password = net.data.get("db_password", "shakedown")
    assert f":{password}@" not in result.process.stdout + json.dumps(result.data)


def test_contracts_check_catches_other_code(net: Net, verify: Verify) -> None:
    with corrupt.replaced_code(net, "distribution_manager", "fee_token"):
        result = verify()
    address = net.record()["contracts"]["distribution_manager"]
    # The fee check reads that contract, so it cannot pass either; both name it.
    result.only_failed({"test_contracts_deployed", "test_fee_distribution"},
                       f"DistributionManager at {address}")
    assert "expected the compiled DistributionManager" in result.message("test_contracts_deployed")


def test_registration_check_catches_moved_node(net: Net, verify: Verify) -> None:
    with corrupt.moved_node(net, 200, "proxy:19999"):
        result = verify()
    result.only_failed({"test_node_registered[node-200]"},
                       "node-200: registered at 'proxy:19999'; expected 'proxy:10200'")


def test_canonical_check_catches_removed_node(net: Net, verify: Verify) -> None:
    with corrupt.removed_from_network(net, 300):
        result = verify()
    result.only_failed({"test_canonical_set"}, "canonical set is [100, 200]", "missing 300")


def test_node_info_check_catches_foreign_key(net: Net, verify: Verify) -> None:
    foreign = node_signer(0).address
    with corrupt.node_info_key(net, 300, bytes.fromhex(foreign[2:])):
        result = verify()
    result.only_failed({"test_node_info_matches_chain[node-300]"},
                       f"node-300: node_info key is {foreign.lower()}",
                       f"signer {node_signer(2).address} for node 300")


def test_convergence_check_catches_forged_clock(net: Net, verify: Verify) -> None:
    top = int(corrupt.sql(net, 200, "SELECT max(originator_sequence_id) FROM "
                          "gateway_envelopes_blob WHERE originator_node_id = 100")[0][0])
    with corrupt.forged_clock(net, 200, 100, 5):
        result = verify()
    result.only_failed({"test_converged"}, "within 3s",
                       f"node-200: originator 100: vector clock at {top + 5} but the highest "
                       f"stored sequence is {top}",
                       f"node-200: originator 100: vector clock at {top + 5}, node-100 and "
                       f"node-300 at {top}")


def test_convergence_check_catches_equivocation(net: Net, verify: Verify) -> None:
    with corrupt.other_bytes(net, 300, 100, 7):
        result = verify()
    result.only_failed({"test_converged"},
                       "node-300: originator 100: envelope set differs from node-100 and node-200",
                       "node-300: originator 100 holds other bytes than node-100 for sequence 7")


def test_gap_check_catches_skipped_sequence(net: Net, verify: Verify) -> None:
    with corrupt.skipped_sequence(net, 200) as sequence:
        result = verify()
    result.only_failed(each("test_no_sequence_gaps", *ALL_NODES),
                       "originator 200: 1 sequence(s) missing in gateway_envelopes_meta below",
                       f": {sequence}")
    assert result.message("test_no_sequence_gaps[node-100]").startswith("node-100: ")


def test_gap_check_catches_duplicate(net: Net, verify: Verify) -> None:
    with corrupt.duplicated_meta_row(net, 200, 300, 11):
        result = verify()
    result.only_failed({"test_no_sequence_gaps[node-200]"},
                       "node-200: originator 300: 1 duplicate rows in gateway_envelopes_meta: "
                       "sequence 11 (2 times)")


def test_signature_check_catches_one_tampered_envelope(net: Net, verify: Verify) -> None:
    with corrupt.tampered_signature(net, 200, 13):
        result = verify()
    # A flipped bit of r recovers another key, or none: either way, not node 200's signer.
    result.only_failed(each("test_signatures_valid", *ALL_NODES),
                       "envelope 200:13: originator signature", node_signer(1).address)
    assert "node-300: envelope 200:13" in result.message("test_signatures_valid[node-300]")


def test_signature_check_catches_wrong_stored_payer(net: Net, verify: Verify) -> None:
    with corrupt.other_payer(net, 100, 300, 21) as address:
        result = verify()
    # the report covering it names that payer too: its payers hash no longer matches
    result.only_failed({"test_signatures_valid[node-100]"},
                       f"node-100: envelope 300:21: stored payer {address}; the payer "
                       "signature recovers to",
                       also=frozenset({"test_reports_agree_with_envelopes[node-100]"}))


def test_usage_check_catches_altered_spend(net: Net, verify: Verify) -> None:
    with corrupt.altered_spend(net, 300, 7) as (originator, minute):
        result = verify()
    result.only_failed({"test_unsettled_usage_priced[node-300]"},
                       "node-300: payer", f"originator {originator}, minute {minute}",
                       "picodollars over")


def test_usage_check_catches_rates_changed_behind_the_envelopes(net: Net, verify: Verify
                                                                ) -> None:
    first = int(corrupt.sql(net, 100, "SELECT min(minutes_since_epoch) FROM unsettled_usage")
                [0][0]) * 60
    with corrupt.rates_from(net, Rates(message_fee=2000, start_time=first - 60)):
        result = verify()
    result.only_failed(each("test_unsettled_usage_priced", *ALL_NODES),
                       "charges base", "the RateRegistry prices it")


def test_fault_check_catches_toxic_left_behind(net: Net, verify: Verify) -> None:
    with corrupt.toxic_left(net, "node-200", "sd-verify-left"):
        result = verify()
    result.only_failed({"test_no_fault_left_behind"}, "toxic sd-verify-left", "node-200")


def test_fault_check_catches_paused_container(net: Net, verify: Verify,
                                              docker_client: docker.DockerClient) -> None:
    container = f"{net.name}-gateway"
    with corrupt.paused(docker_client, container):
        result = verify()
    result.only_failed({"test_no_fault_left_behind"}, f"container {container} is paused")


def test_kept_verdicts_judge_only_what_changed(net: Net, verify: Verify) -> None:
    first = verify()
    total = int(corrupt.sql(net, 100, "SELECT count(*) FROM gateway_envelopes_blob")[0][0])
    assert first.data["stats"] == {"buckets": 3, "rows_judged": total,
                                   "envelopes_opened": total}
    again = verify()
    assert again.failed() == set()
    assert again.data["stats"] == {"buckets": 3, "rows_judged": 0, "envelopes_opened": 0}
    with corrupt.tampered_signature(net, 100, 5):
        tampered = verify()
    tampered.only_failed(each("test_signatures_valid", *ALL_NODES), "envelope 100:5")
    rows_of_100 = int(corrupt.sql(net, 100, "SELECT count(*) FROM gateway_envelopes_blob WHERE "
                                  "originator_node_id = 100")[0][0])
    assert tampered.data["stats"] == {"buckets": 3, "rows_judged": rows_of_100,
                                      "envelopes_opened": 1}


def test_every_corruption_was_put_back(verify: Verify) -> None:
    result = verify()
    assert result.failed() == set(), result.process.stdout[-3000:]
