"""How each adversarial scenario is shown to fail: the node switch that breaks the behaviour
it checks, and the expectations that must then fail (``test_run.CAN_FAIL`` takes these)."""

from __future__ import annotations

TRUSTING = {"REFNODE_TRUST_PEERS": "1"}
BLIND = {"REFNODE_ATTEST_BLINDLY": "1"}
UNCHECKED = {"REFNODE_CHECK_PAYER_SIGNATURES": "0"}
UNLIMITED = {"REFNODE_RATE_LIMIT": "0"}
BLOCKING = {"REFNODE_BLOCKING_FANOUT": "1"}
NO_PINGS = {"REFNODE_KEEPALIVE_S": "0"}

ADVERSARIAL_CAN_FAIL: dict[str, tuple[dict[int, dict[str, str]], tuple[str, ...]]] = {
    # The honest nodes store whatever the rogue's streams carry: forgeries, gaps, no evidence.
    "byzantine-peer": ({100: TRUSTING, 200: TRUSTING},
                       ("rogue-refused(node-300)", "valid-prefix-only(node-300)", "history-set",
                        "verify-suite")),
    # The honest nodes sign whatever they are asked to: the lies reach the chain and settle.
    "lying-reporter": ({100: BLIND, 200: BLIND}, ("liar-refused(node-300)",)),
    # The fuzzed node takes envelopes whose payer signature does not hold: some are stored.
    "invalid-envelope-fuzz": ({100: UNCHECKED}, ("fuzz-rejected(fuzz)",)),
    # The flooded node takes any rate from a client: nothing is refused over its rate.
    "api-flood": ({100: UNLIMITED}, ("flood-withstood(flood)",)),
    # Delivery waits for the stalled subscriber: the publish path and the peers stall with it.
    "slow-subscriber": ({100: BLOCKING}, ("slow-subscriber-isolated(slow)",)),
    # The other nodes never ping node-300: its frozen streams stay open on their side.
    "disconnect": ({100: NO_PINGS, 200: NO_PINGS}, ("streams-closed(pause@node-300)",)),
}
