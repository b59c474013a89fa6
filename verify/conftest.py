"""Options and fixtures of the verify suite; the checks themselves live in shakedown.verify.

Needs only the chain RPC and the node databases. ``node`` parametrizes per-node checks with
the inventory's nodes (ids ``node-100``...), so a failure names its node in its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shakedown.errors import ConfigError, UnreachableError
from shakedown.model import Testnet
from shakedown.verify.payer import STUCK_AFTER_S
from shakedown.verify.plugin import (
    JsonSummary,
    VerifyConfig,
    add_options,
    order_and_check,
    register_groups,
)
from shakedown.verify.session import VerifySession
from shakedown.verify.target import (
    NodeTarget,
    Target,
    check_record,
    pick_testnet,
    resolve_target,
)

CONFIG = pytest.StashKey[VerifyConfig]()
TESTNET = pytest.StashKey[Testnet]()
RUN = pytest.StashKey[VerifySession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.getgroup("shakedown").addoption(
        "--report-stuck-after", dest="sd_report_stuck_after", metavar="SECONDS", type=float,
        default=STUCK_AFTER_S, help="seconds a node's own payer report may stay pending "
                                    f"(default: {STUCK_AFTER_S:g})")


def pytest_configure(config: pytest.Config) -> None:
    register_groups(config)
    config.stash[CONFIG] = cfg = VerifyConfig.from_pytest(config)
    try:  # the inventory and the record alone, no network: a usage error before anything runs
        config.stash[TESTNET], _ = pick_testnet(cfg.inventory, cfg.testnet)
        check_record(config.stash[TESTNET], cfg.inventory, cfg.record)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    if cfg.json_summary is not None:
        config.pluginmanager.register(JsonSummary(cfg.json_summary, cfg), "sd-json-summary")


def pytest_report_header(config: pytest.Config) -> str:
    cfg, net = config.stash[CONFIG], config.stash[TESTNET]
    return (f"shakedown verify: testnet {net.name} from {cfg.inventory}, record "
            f"{cfg.record or net.record_path}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None and run.blob_tables:
        terminalreporter.write_line(f"shakedown verify: {run.describe_blob_tables()}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" in metafunc.fixturenames:
        names = [n.name for n in metafunc.config.stash[TESTNET].nodes]
        metafunc.parametrize("node", names, ids=names, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order_and_check(config, items)


@pytest.fixture(scope="session")
def verify_run(pytestconfig: pytest.Config) -> Iterator[VerifySession]:
    cfg = pytestconfig.stash[CONFIG]
    try:
        target = resolve_target(cfg.inventory, testnet=cfg.testnet, record_path=cfg.record)
    except ConfigError as e:
        pytest.fail(str(e), pytrace=False)
    summary = pytestconfig.pluginmanager.get_plugin("sd-json-summary")
    if summary is not None:
        summary.testnet = target.testnet.name
    with VerifySession(cfg, target) as run:
        pytestconfig.stash[RUN] = run
        yield run
        if summary is not None:
            summary.stats = run.stats()
            summary.blob_tables = dict(run.blob_tables)


@pytest.fixture(scope="session")
def target(verify_run: VerifySession) -> Target:
    return verify_run.target


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config) -> Path:
    """The inventory file verify was pointed at (SSH hosts are read from it)."""
    return pytestconfig.stash[CONFIG].inventory


@pytest.fixture
def node(request: pytest.FixtureRequest, target: Target) -> NodeTarget:
    return target.node(request.param)


@pytest.fixture
def db(verify_run: VerifySession, node: NodeTarget) -> psycopg.Connection:
    try:
        return verify_run.conn(node)
    except UnreachableError as e:
        pytest.fail(str(e), pytrace=False)
