"""Payer reports move on, carry their quorum and match the chain; the chain's books balance."""

import psycopg
import pytest

from shakedown.verify import payer
from shakedown.verify.plugin import expect_none
from shakedown.verify.session import VerifySession
from shakedown.verify.target import NodeTarget

pytestmark = pytest.mark.payer


def test_no_report_stuck(pytestconfig: pytest.Config, node: NodeTarget,
                         db: psycopg.Connection) -> None:
    stuck_after = pytestconfig.getoption("sd_report_stuck_after")
    expect_none(payer.check_stuck(db, node.name, node.node_id, stuck_after))


def test_reports_have_quorum(verify_run: VerifySession, node: NodeTarget,
                             db: psycopg.Connection) -> None:
    canonical = set(verify_run.chain().canonical_node_ids())
    expect_none(payer.check_quorum(db, node.name, node.node_id, verify_run.signers(),
                                   canonical))


def test_settled_reports_match_chain(verify_run: VerifySession, node: NodeTarget,
                                     db: psycopg.Connection) -> None:
    wait_s = max(verify_run.config.settle_s, 10.0)
    expect_none(payer.check_settled(db, node.name, verify_run.chain(), wait_s))


def test_payer_balances(verify_run: VerifySession) -> None:
    expect_none(payer.check_balances(verify_run.chain()))


def test_fee_token_supply(verify_run: VerifySession) -> None:
    expect_none(payer.check_token_supply(verify_run.chain()))


def test_fee_distribution(verify_run: VerifySession) -> None:
    expect_none(payer.check_distribution(verify_run.chain()))
