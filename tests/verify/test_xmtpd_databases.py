"""The verify suite holds on databases laid out like xmtpd's, and still catches corruption there.

One testnet for the module with payer reports every 2 s (prefix ``sdx``): traffic from every
node and the gateway, waited on until every originator's envelopes are settled on the chain.
Each test copies the node databases into xmtpd-shaped ones on the testnet's own PostgreSQL
(``tests/verify/xmtpd.py``: partitioned per originator, no default partition, timestamptz
report times, the blob table under its name before or after xmtpd's migration 00023) and runs
the suite as a user does, with ``--record`` naming the copies: the chain is the real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from shakedown.keys import node_signer
from shakedown.observe import BLOB_TABLES
from shakedown.waiting import wait_for
from tests.deploy.testnets import Net
from tests.verify.corrupt import fee_and_minute
from tests.verify.nets import (
    REPORTS_EVERY_2S,
    all_settled,
    converged,
    fresh_testnet,
    gateway_ready,
    send_traffic,
)
from tests.verify.suite import Summary, run_suite
from tests.verify.xmtpd import copy_testnet, partition, record_for, sql

ALL_NODES = ("node-100", "node-200", "node-300")
OLD_BLOB = "gateway_envelope_blobs"


@pytest.fixture(scope="module")
def net(make_net: Callable[..., Net], docker_client: docker.DockerClient) -> Iterator[Net]:
    with fresh_testnet(lambda _prefix: make_net("sdx", node_env=REPORTS_EVERY_2S),
                       docker_client) as up:
        gateway_ready(up)
        send_traffic(up, 150)
        converged(up)
        wait_for(lambda: all_settled(up), bool, timeout=120, interval=1,
                 what=f"{up.name}: every originator's envelopes settled")
        yield up


def verify_copies(net: Net, out: Path, dsns: dict[int, str]) -> Summary:
    record = out / "xmtpd-record.json"
    record.write_text(json.dumps(record_for(net, dsns)))
    return run_suite(net, out, f"--record={record}")


@pytest.mark.parametrize("blob", BLOB_TABLES)
def test_suite_passes_on_xmtpd_databases(net: Net, tmp_path: Path, blob: str) -> None:
    dsns = copy_testnet(net, "new" if blob == BLOB_TABLES[0] else "old", blob)
    leaves = sql(dsns[200], "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid) "
                 "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                 "JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind IN ('r', 'p')")
    assert (partition(blob, 300, 0), f"{blob}_o300", "FOR VALUES FROM ('0') TO ('1000000')"
            ) in leaves
    assert not [leaf for leaf in leaves if "DEFAULT" in leaf[2]], leaves
    ((key, kind),) = sql(dsns[200], "SELECT public_key, pg_typeof(created_at)::text FROM "
                         "node_info, payer_reports LIMIT 1")
    assert len(bytes(key)) == 65 and kind == "timestamp with time zone"

    result = verify_copies(net, tmp_path, dsns)
    detail = result.process.stdout[-3000:]
    assert result.process.returncode == 0 and result.failed() == set(), detail
    assert len(result.checks) == 37
    assert result.data["blob_tables"] == dict.fromkeys(ALL_NODES, blob)
    assert f"envelope blobs read from {blob} (node-100, node-200, node-300)" in detail


def test_checks_catch_corruption_in_xmtpd_partitions(net: Net, tmp_path: Path) -> None:
    """A blob row deleted in its partition on every node (its usage with it, so only the gap
    check may notice), and node-300's node_info holding node-100's public key."""
    dsns = copy_testnet(net, "bad", OLD_BLOB)
    last = {r[0] for r in sql(dsns[100], "SELECT last_sequence_id FROM unsettled_usage WHERE "
                              "originator_id = 200")}
    sequence = next(s for s in range(2, 50) if s not in last)
    for dsn in dsns.values():
        ((data, payer_id),) = sql(dsn, f"SELECT b.originator_envelope, m.payer_id FROM "
                                  f"{OLD_BLOB} b JOIN gateway_envelopes_meta m USING "
                                  "(originator_node_id, originator_sequence_id) WHERE "
                                  "originator_node_id = 200 AND originator_sequence_id = %s",
                                  (sequence,))
        fee, minute = fee_and_minute(bytes(data))
        sql(dsn, f"DELETE FROM {partition(OLD_BLOB, 200, 0)} WHERE originator_sequence_id = %s",
            (sequence,))
        sql(dsn, "UPDATE unsettled_usage SET spend_picodollars = spend_picodollars - %s, "
            "message_count = message_count - 1 WHERE payer_id = %s AND originator_id = 200 "
            "AND minutes_since_epoch = %s", (fee, payer_id, minute))
    ((key_of_100,),) = sql(dsns[100], "SELECT public_key FROM node_info")
    sql(dsns[300], "UPDATE node_info SET public_key = %s", (bytes(key_of_100),))

    result = verify_copies(net, tmp_path, dsns)
    gaps = {f"test_no_sequence_gaps[{n}]" for n in ALL_NODES}
    node_info = "test_node_info_matches_chain[node-300]"
    assert result.failed() == gaps | {node_info}, result.process.stdout[-3000:]
    for name in gaps:
        assert (f"originator 200: 1 sequence(s) missing in {OLD_BLOB} below"
                in result.message(name)), result.message(name)
        assert result.message(name).endswith(f": {sequence}")
    assert (f"node-300: node_info key is {node_signer(0).address}; the NodeRegistry has signer "
            f"{node_signer(2).address} for node 300") == result.message(node_info)
    assert result.process.returncode == 1
