"""The chain holds the recorded contracts and the inventory's nodes, and each database agrees."""

import psycopg
import pytest

from shakedown.verify import membership
from shakedown.verify.plugin import expect_none
from shakedown.verify.session import VerifySession
from shakedown.verify.target import NodeTarget, Target

pytestmark = pytest.mark.chain


def test_contracts_deployed(verify_run: VerifySession) -> None:
    expect_none(membership.check_contracts(verify_run.chain()))


def test_node_registered(verify_run: VerifySession, node: NodeTarget) -> None:
    expect_none(membership.check_registration(verify_run.chain(), node))


def test_canonical_set(verify_run: VerifySession, target: Target) -> None:
    expected = verify_run.config.canonical or [n.node_id for n in target.nodes]
    expect_none(membership.check_canonical(verify_run.chain(), expected))


def test_node_info_matches_chain(verify_run: VerifySession, node: NodeTarget,
                                 db: psycopg.Connection) -> None:
    expect_none(membership.check_node_info(db, node, verify_run.chain()))
