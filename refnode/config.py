"""Node and gateway configuration from environment variables, checked once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

BYZANTINE_MODES = ("equivocate", "gap", "stale")
LIES = ("fee", "range", "payers")


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} is not set")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "true" if default else "false").strip().lower()
    if raw not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
        raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")
    return raw in {"1", "true", "yes", "on"}


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name}={value:g} must be above 0")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number >= 0."""
    raw = env.get(name, str(default)).strip()
    if not raw.isdigit():
        raise ConfigError(f"{name}={raw!r} is not a whole number >= 0")
    return int(raw)


def _not_negative(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value < 0:
        raise ConfigError(f"{name}={value:g} must not be negative")
    return value


def _words(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated subset of ``allowed`` (empty when unset)."""
    words = tuple(w.strip() for w in env.get(name, "").split(",") if w.strip())
    unknown = [w for w in words if w not in allowed]
    if unknown:
        raise ConfigError(f"{name}={env.get(name)!r}: {unknown[0]!r} is not one of "
                          f"{', '.join(allowed)}")
    return words


def _address(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if len(raw) != 42 or not raw.startswith("0x"):
        raise ConfigError(f"{name}={raw!r} is not a 0x-prefixed 20-byte address")
    try:
        int(raw, 16)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a 0x-prefixed 20-byte address") from None
    return raw


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs. The signer key stays out of repr."""

    signer_key: str
    db_dsn: str
    chain_rpc: str
    node_registry: str
    rate_registry: str
    listen: str = "0.0.0.0:5050"
    node_id: int | None = None          # None: found on-chain by this node's signer
    api_enabled: bool = True            # publish and query; replication is always served
    sync_enabled: bool = True           # subscribe to the other canonical nodes
    registry_refresh_s: float = 2.0
    log_level: str = "INFO"
    # Payer reports: off without the PayerReportManager's address.
    payer_report_manager: str | None = None
    report_interval_s: float = 60.0     # how often this node reports its own new envelopes
    attest_enabled: bool = True         # False: judge nothing, sign nothing (reports stay pending)
    settle_enabled: bool = True         # False: submit own reports but never settle them
    mirror_enabled: bool = True         # False: never record others' reports from the chain
    price_multiplier: float = 1.0       # != 1: misprice (charge and judge) by this factor
    # Limits that keep one client or peer from hurting the others.
    rate_limit: int = 2000              # publish/query calls per second per connection; 0: none
    keepalive_s: float = 5.0            # ping peers this often, drop silent ones; 0: never
    subscriber_buffer: int = 1000       # envelopes held for one subscriber before it falls behind
    check_workers: int = 0              # processes opening envelopes; 0: one per core, 1: none
    # Adversaries and bugs on purpose, for the adversarial scenarios (all off by default).
    byzantine: tuple[str, ...] = ()     # serve peers bad streams: equivocate, gap, stale
    trust_peers: bool = False           # True: store what a peer's stream carries unexamined
    check_payer_signatures: bool = True  # False: store envelopes whose signature does not hold
    lie_in_reports: tuple[str, ...] = ()  # own payer reports disagree: fee, range, payers
    attest_blindly: bool = False        # True: sign any report without comparing
    blocking_fanout: bool = False       # True: wait for every subscriber's buffer to have room
    # Planted bugs, off by default, for showing that the chaos engine finds them:
    bug_drop_after_reconnect_s: float = 0.0   # > 0: drop one envelope replicated this soon
    bug_forget_usage_on_restart: bool = False  # forget a payer's unsettled usage at start
    # Planted bugs for the catalogue's failure runs (README): each is off by default.
    max_envelope_age_s: float = 0.0     # > 0: refuse replicated envelopes older than this
    follow_registered: bool = False     # True: follow every registered node, canonical or not
    write_behind_ms: float = 0.0        # > 0: acknowledge publishes, store them this much later
    db_reconnect: bool = True           # False: one database connection, never reopened

    def __repr__(self) -> str:
        return f"NodeConfig(node_id={self.node_id}, listen={self.listen!r}, db=..., signer_key=***)"

    def __post_init__(self) -> None:
        if self.price_multiplier < 0:
            raise ConfigError(f"REFNODE_PRICE_MULTIPLIER={self.price_multiplier:g} must not be "
                              "negative")
        if self.bug_drop_after_reconnect_s < 0:
            raise ConfigError(f"REFNODE_BUG_DROP_AFTER_RECONNECT_S="
                              f"{self.bug_drop_after_reconnect_s:g} must not be negative")

    @property
    def reports_enabled(self) -> bool:
        return bool(self.payer_report_manager)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> NodeConfig:
        node_id = env.get("REFNODE_NODE_ID")
        return cls(
            signer_key=_get(env, "REFNODE_SIGNER_KEY"),
            db_dsn=_get(env, "REFNODE_DB_DSN"),
            chain_rpc=_get(env, "REFNODE_CHAIN_RPC"),
            node_registry=_get(env, "REFNODE_NODE_REGISTRY"),
            rate_registry=_get(env, "REFNODE_RATE_REGISTRY"),
            listen=env.get("REFNODE_LISTEN", "0.0.0.0:5050"),
            node_id=int(node_id) if node_id else None,
            api_enabled=_bool(env, "REFNODE_API_ENABLED", True),
            sync_enabled=_bool(env, "REFNODE_SYNC_ENABLED", True),
            registry_refresh_s=_float(env, "REFNODE_REGISTRY_REFRESH_S", 2.0),
            log_level=env.get("REFNODE_LOG_LEVEL", "INFO"),
            payer_report_manager=_address(env, "REFNODE_PAYER_REPORT_MANAGER"),
            report_interval_s=_positive(env, "REFNODE_REPORT_INTERVAL_S", 60.0),
            attest_enabled=_bool(env, "REFNODE_ATTEST_ENABLED", True),
            settle_enabled=_bool(env, "REFNODE_SETTLE_ENABLED", True),
            mirror_enabled=_bool(env, "REFNODE_MIRROR_ENABLED", True),
            price_multiplier=_float(env, "REFNODE_PRICE_MULTIPLIER", 1.0),
            rate_limit=_count(env, "REFNODE_RATE_LIMIT", 2000),
            keepalive_s=_not_negative(env, "REFNODE_KEEPALIVE_S", 5.0),
            subscriber_buffer=max(1, _count(env, "REFNODE_SUBSCRIBER_BUFFER", 1000)),
            check_workers=_count(env, "REFNODE_CHECK_WORKERS", 0),
            byzantine=_words(env, "REFNODE_BYZANTINE", BYZANTINE_MODES),
            trust_peers=_bool(env, "REFNODE_TRUST_PEERS", False),
            check_payer_signatures=_bool(env, "REFNODE_CHECK_PAYER_SIGNATURES", True),
            lie_in_reports=_words(env, "REFNODE_LIE_IN_REPORTS", LIES),
            attest_blindly=_bool(env, "REFNODE_ATTEST_BLINDLY", False),
            blocking_fanout=_bool(env, "REFNODE_BLOCKING_FANOUT", False),
            bug_drop_after_reconnect_s=_float(env, "REFNODE_BUG_DROP_AFTER_RECONNECT_S", 0.0),
            bug_forget_usage_on_restart=_bool(env, "REFNODE_BUG_FORGET_USAGE_ON_RESTART", False),
            max_envelope_age_s=_not_negative(env, "REFNODE_MAX_ENVELOPE_AGE_S", 0.0),
            follow_registered=_bool(env, "REFNODE_FOLLOW_REGISTERED", False),
            write_behind_ms=_not_negative(env, "REFNODE_WRITE_BEHIND_MS", 0.0),
            db_reconnect=_bool(env, "REFNODE_DB_RECONNECT", True),
        )


@dataclass(frozen=True)
class GatewayConfig:
    payer_key: str
    chain_rpc: str
    node_registry: str
    listen: str = "0.0.0.0:5052"
    registry_refresh_s: float = 2.0
    log_level: str = "INFO"

    def __repr__(self) -> str:
        return f"GatewayConfig(listen={self.listen!r}, payer_key=***)"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GatewayConfig:
        return cls(
            payer_key=_get(env, "GATEWAY_PAYER_KEY"),
            chain_rpc=_get(env, "GATEWAY_CHAIN_RPC"),
            node_registry=_get(env, "GATEWAY_NODE_REGISTRY"),
            listen=env.get("GATEWAY_LISTEN", "0.0.0.0:5052"),
            registry_refresh_s=_float(env, "GATEWAY_REGISTRY_REFRESH_S", 2.0),
            log_level=env.get("GATEWAY_LOG_LEVEL", "INFO"),
        )
