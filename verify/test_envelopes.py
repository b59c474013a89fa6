"""Every stored envelope's signatures hold, and unsettled usage is what the envelopes cost."""

import pytest

from shakedown.verify.plugin import expect_none
from shakedown.verify.session import VerifySession
from shakedown.verify.signatures import check_signatures
from shakedown.verify.target import NodeTarget
from shakedown.verify.usage import check_usage

pytestmark = pytest.mark.envelopes


def test_signatures_valid(verify_run: VerifySession, node: NodeTarget) -> None:
    expect_none(check_signatures(verify_run.scan(), node.name))


def test_unsettled_usage_priced(verify_run: VerifySession, node: NodeTarget) -> None:
    expect_none(check_usage(verify_run.scan(), node.name))
