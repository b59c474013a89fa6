"""The verify suite's pytest side: options, their frozen config, assertions, the JSON summary.

``verify/conftest.py`` calls ``add_options`` and registers ``JsonSummary``; checks end in
``expect_none(problems)``, which fails with the problems as the whole message.

    pytest verify/ --inventory inventories/local.py -m replication --json-summary out.json
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from refnode.pricing import RATES_GRACE_S

# Groups of checks, picked with ``-m``; registered by the suite itself, so they hold whichever
# configuration file pytest settles on (verify/pytest.ini, or the project's pyproject.toml when
# an option's value is a path inside the repository).
GROUPS = {
    "chain": "the contracts, registrations and canonical set on the chain, and node_info",
    "replication": "canonical nodes converge; no sequence gap or duplicate",
    "envelopes": "stored signatures hold; unsettled usage equals the priced envelopes",
    "faults": "no fault left behind on the testnet",
    "payer": "payer reports: none stuck, quorum, settled rows match the chain, money conserved",
}
_BUILTIN = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def register_groups(config: pytest.Config) -> None:
    for name, doc in GROUPS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def order_and_check(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run groups in GROUPS order (convergence settles before envelopes are read), and keep
    markers strict whatever the configuration: an unknown mark or ``-m`` group is an error."""
    rank = {name: k for k, name in enumerate(GROUPS)}
    items.sort(key=lambda item: min((rank[m.name] for m in item.iter_markers()
                                     if m.name in rank), default=len(rank)))
    known = set(GROUPS) | _BUILTIN
    for item in items:
        for mark in item.iter_markers():
            if mark.name not in known:
                raise pytest.UsageError(f"{item.nodeid}: unknown mark {mark.name!r}; "
                                        f"groups: {', '.join(GROUPS)}")
    words = set(re.findall(r"[A-Za-z_]\w*", config.option.markexpr or "")) - {"and", "or", "not"}
    if words - known:
        raise pytest.UsageError(f"-m: unknown group {sorted(words - known)[0]!r}; "
                                f"groups: {', '.join(GROUPS)}")


def add_options(parser: pytest.Parser) -> None:
    """Declare the suite's options once, in their own group."""
    group = parser.getgroup("shakedown", "shakedown verify")
    group.addoption("--inventory", dest="sd_inventory", metavar="PATH",
                    default="inventories/local.py",
                    help="pyinfra inventory naming the testnet (default: inventories/local.py)")
    group.addoption("--testnet", dest="sd_testnet", metavar="NAME", default=None,
                    help="which of the inventory's testnets (default: its only one)")
    group.addoption("--record", dest="sd_record", metavar="PATH", default=None,
                    help="deployment record to read instead of the testnet's own")
    group.addoption("--settle-timeout", dest="sd_settle", metavar="SECONDS", type=float,
                    default=30.0,
                    help="seconds canonical nodes get to converge (default: 30)")
    group.addoption("--canonical", dest="sd_canonical", metavar="IDS", default=None,
                    help="node ids expected canonical, comma-separated (default: every "
                         "inventory node)")
    group.addoption("--rates-grace", dest="sd_rates_grace", metavar="SECONDS", type=float,
                    default=RATES_GRACE_S,
                    help="seconds a node may price with the rates it read before a change "
                         f"(default: {RATES_GRACE_S:g}, refnode's own)")
    group.addoption("--envelope-cache", dest="sd_envelope_cache", metavar="DIR", default=None,
                    help="directory keeping opened envelopes between runs, or 'off' "
                         "(default: $XDG_CACHE_HOME/shakedown/verify)")
    group.addoption("--verify-workers", dest="sd_workers", metavar="N", type=int, default=None,
                    help="processes that check signatures (default: one per core)")
    group.addoption("--json-summary", dest="sd_json_summary", metavar="PATH", default=None,
                    help="write each check's outcome and message to this JSON file")


def _cache_dir(raw: str | None) -> Path | None:
    if raw == "off":
        return None
    if raw:
        return Path(raw)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shakedown" / "verify"


@dataclass(frozen=True)
class VerifyConfig:
    """The options, resolved once."""

    inventory: Path
    testnet: str | None
    record: Path | None
    settle_s: float
    canonical: tuple[int, ...] | None
    rates_grace_s: float
    envelope_cache: Path | None
    workers: int | None
    json_summary: Path | None

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> VerifyConfig:
        from shakedown.verify.target import find_inventory

        opt = config.option
        canonical = None
        if opt.sd_canonical is not None:
            try:
                canonical = tuple(int(x) for x in opt.sd_canonical.split(",") if x.strip())
            except ValueError:
                raise pytest.UsageError(f"--canonical: expected node ids like 100,200; got "
                                        f"{opt.sd_canonical!r}") from None
        return cls(
            inventory=find_inventory(opt.sd_inventory),
            testnet=opt.sd_testnet,
            record=Path(opt.sd_record) if opt.sd_record else None,
            settle_s=opt.sd_settle,
            canonical=canonical,
            rates_grace_s=opt.sd_rates_grace,
            envelope_cache=_cache_dir(opt.sd_envelope_cache),
            workers=opt.sd_workers,
            json_summary=Path(opt.sd_json_summary) if opt.sd_json_summary else None,
        )


def expect_none(problems: list[str]) -> None:
    """Fail the calling check with its problems, one a line, and no traceback."""
    __tracebackhide__ = True
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _message(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    error = call.excinfo.value
    if isinstance(error, pytest.fail.Exception):
        return str(error.msg)
    if isinstance(error, pytest.skip.Exception):
        return str(error.msg)
    return f"{type(error).__name__}: {error}".strip()


class JsonSummary:
    """Collects every check's outcome and message; writes them at the end of the session."""

    def __init__(self, path: Path, config: VerifyConfig) -> None:
        self.path = path
        self.config = config
        self.checks: dict[str, dict[str, Any]] = {}
        self.collect_errors: list[str] = []
        self.testnet: str | None = config.testnet
        self.stats: dict[str, int] = {}  # filled by the suite when its session ends
        self.blob_tables: dict[str, str] = {}  # node -> envelope blob table read, likewise
        self.started = time.monotonic()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Any:
        report = yield
        entry = self.checks.setdefault(item.nodeid, {
            "id": item.nodeid,
            "name": item.name,
            "check": getattr(item, "originalname", item.name),
            "target": item.callspec.id if hasattr(item, "callspec") else None,
            "groups": sorted({m.name for m in item.iter_markers() if m.name in GROUPS}),
            "outcome": "passed", "message": "", "duration_s": 0.0,
        })
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 3)
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = _message(call)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["message"] = _message(call)
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            last = (report.longreprtext.strip().splitlines() or ["?"])[-1]
            self.collect_errors.append(f"{report.nodeid}: {last}")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        checks = list(self.checks.values())
        counts: dict[str, int] = {}
        for c in checks:
            counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
        summary = {
            "inventory": str(self.config.inventory.resolve()),
            "testnet": self.testnet,
            "exit_status": int(exitstatus),
            "passed": not self.collect_errors and all(
                c["outcome"] in ("passed", "skipped") for c in checks) and bool(checks),
            "counts": counts,
            "duration_s": round(time.monotonic() - self.started, 3),
            "collect_errors": self.collect_errors,
            "stats": self.stats,
            "blob_tables": self.blob_tables,
            "checks": checks,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(summary, indent=2) + "\n")
