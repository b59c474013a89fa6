"""Canonical nodes hold the same envelopes, and no originator's sequence has a hole."""

import psycopg
import pytest

from shakedown.verify import replication
from shakedown.verify.plugin import expect_none
from shakedown.verify.session import VerifySession
from shakedown.verify.target import NodeTarget, Target

pytestmark = pytest.mark.replication


def test_converged(verify_run: VerifySession, target: Target) -> None:
    canonical = set(verify_run.chain().canonical_node_ids())
    nodes = [n for n in target.nodes if n.node_id in canonical]
    conns, unreachable = verify_run.conns(nodes)
    expect_none(unreachable + replication.check_converged(
        conns, canonical, settle_s=verify_run.config.settle_s))


def test_no_sequence_gaps(node: NodeTarget, db: psycopg.Connection) -> None:
    expect_none(replication.check_sequences(db, node.name))
