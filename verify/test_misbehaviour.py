"""No canonical node misbehaves: nothing its peers refused from its streams holds against it,
and no payer report anyone holds disagrees with the envelopes it covers."""

import psycopg
import pytest

from shakedown.verify.misbehaviour import check_misbehaviour
from shakedown.verify.plugin import expect_none
from shakedown.verify.report_audit import check_reports_agree
from shakedown.verify.session import VerifySession
from shakedown.verify.target import NodeTarget


@pytest.mark.replication
def test_no_misbehaviour(verify_run: VerifySession, node: NodeTarget,
                         db: psycopg.Connection) -> None:
    canonical = set(verify_run.chain().canonical_node_ids())
    expect_none(check_misbehaviour(db, node.name, verify_run.signers(), canonical))


@pytest.mark.payer
def test_reports_agree_with_envelopes(node: NodeTarget, db: psycopg.Connection) -> None:
    expect_none(check_reports_agree(db, node.name))
