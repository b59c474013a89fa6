"""Per-destination faults in container namespaces, measured on a deployed testnet.

Steps: shape node-100 toward node-200 only (tbf, a tier both ways), time a request from
node-100 to node-200 (through its proxy listener and directly) and to node-300; from node-200
back to node-100 and to node-300; a second link fault on the same namespace gets its own
class; clearing one leaves the other. Loss toward node-200 drops connects there, not to
node-300. Per-destination delay is refused on this kernel (no sch_netem), naming the module.
The ``inj`` fixture asserts nothing is left in any namespace afterwards.
"""

from __future__ import annotations

import time

import pytest

from shakedown.errors import ConfigError, FaultError
from shakedown.faults import Injector
from shakedown.faults.docker import netem_available
from shakedown.faults.ops import container_pid, in_netns
from shakedown.model import Testnet
from tests.faults.observe import failed_connects, send_seconds

SIZE = 500_000  # bytes per request: 1 s at 4000 kbit/s


def kbit(seconds: float) -> float:
    return SIZE * 8 / 1000 / seconds


def test_tbf_toward_one_peer_shapes_that_link_only(inj: Injector, testnet: Testnet) -> None:
    addr = inj.backend.view().addresses
    started = time.monotonic()
    tier = inj.apply("tbf", "node-100", {"rate_kbit": 4000, "dst": "node-200",
                                         "direction": "both"})
    applied_s = time.monotonic() - started
    to_200, direct_200, to_300, direct_300 = send_seconds(
        testnet.container("node-100"),
        [("proxy", 10200), (addr["node-200"], 5050), ("proxy", 10300), (addr["node-300"], 5050)],
        SIZE)
    back_100, from_200_to_300 = send_seconds(testnet.container("node-200"),
                                             [("proxy", 10100), ("proxy", 10300)], SIZE)
    for what, s in (("node-100 -> proxy:10200", to_200), ("node-100 -> node-200", direct_200),
                    ("node-200 -> proxy:10100", back_100)):
        assert kbit(s) <= 4000 * 1.25, f"{what}: {kbit(s):.0f} kbit/s through 4000 kbit tbf"
    for what, s in (("node-100 -> proxy:10300", to_300), ("node-100 -> node-300", direct_300),
                    ("node-200 -> proxy:10300", from_200_to_300)):
        assert kbit(s) >= 3 * 4000, f"{what} is shaped too: {kbit(s):.0f} kbit/s"
    print(f"per-destination tbf applied in {applied_s * 1000:.0f} ms; shaped "
          f"{kbit(to_200):.0f} kbit/s, free {kbit(to_300):.0f} kbit/s")

    # A second link on node-100's namespace: its own class; a whole-device qdisc is refused.
    other = inj.apply("tbf", "node-100", {"rate_kbit": 8000, "dst": "node-300"})
    classes = in_netns(testnet.container("node-100"), ["tc", "class", "show", "dev", "eth0"])
    assert classes.count("class htb 5d:") == 2, classes
    with pytest.raises(FaultError, match="carries a shakedown qdisc"):
        inj.apply("tbf", "node-100", {"rate_kbit": 1000})
    inj.clear(tier)
    to_200, to_300 = send_seconds(testnet.container("node-100"),
                                  [("proxy", 10200), ("proxy", 10300)], SIZE)
    assert kbit(to_200) >= 3 * 4000, f"cleared link still shaped: {kbit(to_200):.0f} kbit/s"
    assert kbit(to_300) <= 8000 * 1.25, f"the other link lost its tbf: {kbit(to_300):.0f}"
    inj.clear(other)


def test_loss_toward_one_peer_drops_only_there(inj: Injector, testnet: Testnet) -> None:
    node_100 = testnet.container("node-100")
    started = time.monotonic()
    inj.apply("loss", "node-100", {"percent": 50, "dst": "node-200"})
    applied_s = time.monotonic() - started
    lossy = failed_connects(node_100, "proxy", 10200)
    clean = failed_connects(node_100, "proxy", 10300)
    # A connect fails when its SYN or the SYN-ACK is dropped: 75 % of 30 expected.
    assert lossy >= 12, f"only {lossy}/30 connects toward node-200 failed at 50 % loss"
    assert clean <= 2, f"{clean}/30 connects toward node-300 failed; it is not in dst"
    print(f"per-destination loss applied in {applied_s * 1000:.0f} ms; "
          f"{lossy}/30 connects failed toward node-200, {clean}/30 toward node-300")
    inj.clear_all()
    assert failed_connects(node_100, "proxy", 10200) <= 2


def test_per_destination_delay_needs_netem(inj: Injector, testnet: Testnet) -> None:
    params = {"delay_ms": 100, "dst": "node-200"}
    if netem_available(container_pid(testnet.container("node-100"))):
        entry = inj.apply("netem", "node-100", params)
        assert "per destination" in entry.mechanism
        return
    with pytest.raises(FaultError, match="no sch_netem module") as refused:
        inj.apply("netem", "node-100", params)
    assert "\n" not in str(refused.value) and "toward dst" in str(refused.value)
    assert inj.active() == []
    # loss and rate fall back per destination
    entry = inj.apply("netem", "node-100", {"loss_pct": 10, "rate_kbit": 8000,
                                            "dst": "node-200"})
    assert "iptables statistic DROP on node-100->node-200" in entry.mechanism
    assert "tbf per destination" in entry.mechanism


def test_bad_destinations_are_refused_before_anything_is_written(inj: Injector) -> None:
    before = inj.entries()
    for params, message in (({"rate_kbit": 800, "dst": "node-900"}, "unknown target"),
                            ({"rate_kbit": 800, "dst": "gateway"}, "applies to: node"),
                            ({"rate_kbit": 800, "dst": "node-100"}, "other than the target"),
                            ({"rate_kbit": 800, "dst": "node-200", "direction": "in"},
                             "choose one of")):
        with pytest.raises(ConfigError, match=message):
            inj.apply("tbf", "node-100", params)
    assert inj.entries() == before
