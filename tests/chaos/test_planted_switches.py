"""The planted-bug switches: off by default, read from the environment, checked at start."""

from __future__ import annotations

import pytest

from refnode.config import ConfigError, NodeConfig

BASE_ENV = {"REFNODE_SIGNER_KEY": "0x" + "11" * 32, "REFNODE_DB_DSN": "postgresql://x",
            "REFNODE_CHAIN_RPC": "http://x", "REFNODE_NODE_REGISTRY": "0x" + "22" * 20,
            "REFNODE_RATE_REGISTRY": "0x" + "33" * 20}


def test_planted_bugs_are_off_unless_switched_on() -> None:
    config = NodeConfig.from_env(BASE_ENV)
    assert (config.bug_drop_after_reconnect_s, config.bug_forget_usage_on_restart) == (0, False)
    config = NodeConfig.from_env({**BASE_ENV, "REFNODE_BUG_DROP_AFTER_RECONNECT_S": "1",
                                  "REFNODE_BUG_FORGET_USAGE_ON_RESTART": "1"})
    assert (config.bug_drop_after_reconnect_s, config.bug_forget_usage_on_restart) == (1, True)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("REFNODE_BUG_DROP_AFTER_RECONNECT_S", "-1", "must not be negative"),
    ("REFNODE_BUG_DROP_AFTER_RECONNECT_S", "soon", "not a number"),
    ("REFNODE_BUG_FORGET_USAGE_ON_RESTART", "maybe", "not a boolean"),
])
def test_bad_switch_values_name_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{says}"):
        NodeConfig.from_env({**BASE_ENV, name: value})
