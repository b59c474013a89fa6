"""Pure parts of the payer pipeline: payer ordering and hashing, the digest's domain, pricing,
the node's switches, the attestation wire format and revert decoding."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from web3.exceptions import ContractCustomError

from refnode.attest import _difference, report_from_proto, report_to_proto
from refnode.chain import Rates
from refnode.config import ConfigError, NodeConfig
from refnode.pricing import Pricing, rates_window
from refnode.report_spec import ReportDomain, ReportSpec, payers_hash, sorted_payers
from refnode.reports import tick_seconds
from refnode.settlement import revert_reason

LOW = "0x00000000000000000000000000000000000000aa"
HIGH = "0xF000000000000000000000000000000000000001"
MANAGER = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
BASE_ENV = {"REFNODE_SIGNER_KEY": "0x01", "REFNODE_DB_DSN": "postgresql://x",
            "REFNODE_CHAIN_RPC": "http://x", "REFNODE_NODE_REGISTRY": MANAGER,
            "REFNODE_RATE_REGISTRY": MANAGER}


def spec(**changes: object) -> ReportSpec:
    fields: dict[str, object] = dict(originator_node_id=100, start_sequence_id=0,
                                     end_sequence_id=10, end_minute_since_epoch=29_000_000,
                                     payers_hash=payers_hash([LOW], [5]), node_ids=(100, 200))
    fields.update(changes)
    return ReportSpec(**fields)  # type: ignore[arg-type]


def test_payers_sort_as_numbers_and_merge_spellings() -> None:
    payers, fees = sorted_payers({HIGH: 1, LOW.upper().replace("0X", "0x"): 2, LOW: 3})
    assert [p.lower() for p in payers] == [LOW.lower(), HIGH.lower()]
    assert fees == [5, 1], "two spellings of one address are one payer"
    assert payers_hash(*sorted_payers({HIGH: 1, LOW: 5})) != payers_hash([HIGH, LOW], [1, 5])


def test_payers_hash_refuses_mismatched_lists() -> None:
    with pytest.raises(ValueError, match="2 payers but 1 fees"):
        payers_hash([LOW, HIGH], [1])


def test_digest_depends_on_every_field_and_the_domain() -> None:
    domain = ReportDomain(31337, MANAGER)
    assert domain.manager == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    base = spec().digest(domain)
    variants = [spec(start_sequence_id=1), spec(end_sequence_id=11),
                spec(end_minute_since_epoch=1), spec(payers_hash=b"\x01" * 32),
                spec(node_ids=(100,)), spec(originator_node_id=200)]
    digests = {v.digest(domain) for v in variants} | {spec().digest(ReportDomain(1, MANAGER)),
                                                     spec().digest(ReportDomain(31337, LOW))}
    assert base not in digests and len(digests) == len(variants) + 2


def test_pricing_multiplies_and_accepts_rates_within_the_grace() -> None:
    old, new = Rates(1000, 1, 0, 100, 0), Rates(2000, 2, 7, 100, 1_000)
    assert Pricing().fees(old, 100, 30) == (1000 + 3000, 0)
    assert Pricing(3).fees(new, 100, 30) == (3 * (2000 + 6000), 21)
    assert rates_window([old, new], 1_010, 1_020) == [new]
    assert rates_window([old, new], 990, 1_010) == [old, new]
    assert Pricing().acceptable([old, new], 1_010, 100, 30, grace_s=30) == {(4000, 0), (8000, 7)}
    assert Pricing().acceptable([old, new], 1_100, 100, 30, grace_s=30) == {(8000, 7)}
    assert Pricing().acceptable([], 5, 10, 1) == {(0, 0)}, "no rates yet: free"


def test_report_switches_are_read_from_the_environment() -> None:
    config = NodeConfig.from_env(BASE_ENV)
    assert not config.reports_enabled
    assert (config.report_interval_s, config.attest_enabled, config.settle_enabled,
            config.price_multiplier) == (60.0, True, True, 1.0)
    config = NodeConfig.from_env({**BASE_ENV, "REFNODE_PAYER_REPORT_MANAGER": MANAGER,
                                  "REFNODE_REPORT_INTERVAL_S": "2", "REFNODE_ATTEST_ENABLED": "0",
                                  "REFNODE_SETTLE_ENABLED": "false",
                                  "REFNODE_PRICE_MULTIPLIER": "1.5"})
    assert config.reports_enabled
    assert (config.report_interval_s, config.attest_enabled, config.settle_enabled,
            config.price_multiplier) == (2.0, False, False, 1.5)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("REFNODE_REPORT_INTERVAL_S", "0", "must be above 0"),
    ("REFNODE_REPORT_INTERVAL_S", "soon", "not a number"),
    ("REFNODE_ATTEST_ENABLED", "maybe", "not a boolean"),
    ("REFNODE_PRICE_MULTIPLIER", "-1", "must not be negative"),
    ("REFNODE_PAYER_REPORT_MANAGER", "0x1234", "20-byte address"),
])
def test_bad_switches_name_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{says}"):
        NodeConfig.from_env({**BASE_ENV, name: value})


def test_attestation_request_round_trips() -> None:
    fees = {HIGH: 7, LOW: 5}
    s = spec(payers_hash=payers_hash(*sorted_payers(fees)))
    msg = report_to_proto(s, fees)
    assert [p.lower() for p in msg.payers] == [LOW, HIGH.lower()], "sent in contract order"
    back, claimed = report_from_proto(msg)
    assert back == s and {k.lower(): v for k, v in claimed.items()} == {LOW: 5, HIGH.lower(): 7}
    del msg.fees[:]
    with pytest.raises(ValueError, match="2 payers but 0 fees"):
        report_from_proto(msg)
    msg.payers_hash = b"\x01"
    with pytest.raises(ValueError, match="32 bytes"):
        report_from_proto(msg)


def test_a_rejection_names_the_payer_that_differs() -> None:
    own = dict(zip(*sorted_payers({LOW: 5, HIGH: 7}), strict=True))
    assert "report charges 9, this node's copy 5" in _difference(own, {LOW: 9, HIGH: 7})
    assert _difference(own, None) == "payers hash differs from this node's copy"


def test_revert_data_is_decoded_to_the_contract_error() -> None:
    selector = function_signature_to_4byte_selector("ContinuityBroken(uint32,uint64,uint64)")
    data = "0x" + (selector + encode(["uint32", "uint64", "uint64"], [100, 10, 11])).hex()
    assert revert_reason(ContractCustomError(data, data=data)) == "ContinuityBroken(100, 10, 11)"
    assert revert_reason(RuntimeError("boom")) == "boom"


def test_ticks_are_a_few_per_interval_within_bounds() -> None:
    assert tick_seconds(1.0) == 0.25 and tick_seconds(2.0) == 0.5
    assert tick_seconds(0.1) == 0.25 and tick_seconds(3600) == 5.0
