"""Anvil's well-known accounts, split by role so no two parts of a testnet share a key.

Locally every key derives from anvil's public test mnemonic (HD path m/44'/60'/0'/0/<index>);
anvil funds them all when started with ``--accounts 220`` (the deploy's chain role and
``shakedown.procs.anvil`` do). These keys are public knowledge: fine for a local chain, never
for anything else.

Role split (account indices). The first 100 kept their places when the node pools grew from 30
to 90 nodes, so nodes 0-29 sign with the keys they always had:

    admin            0        deploys and administers the contracts
    (spare)          1-9      free for tests and tools
    node signers     10-39    node n (0-29) signs envelopes and attestations with index 10 + n,
                     100-159  node n (30-89) with index 70 + n
    node owners      40-69    node n (0-29) claims and withdraws fees with index 40 + n,
                     160-219  node n (30-89) with index 130 + n
    payers           70-89    deposit into the PayerRegistry
    gateways         90-99    sign payer envelopes

    admin = admin_account(); signer = node_signer(0)   # the first node's signer
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount

from shakedown.errors import ConfigError

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_COUNT = 220
HD_PATH = "m/44'/60'/0'/0/{index}"

ADMIN_INDEX = 0
NODE_SIGNERS = (*range(10, 40), *range(100, 160))
NODE_OWNERS = (*range(40, 70), *range(160, 220))
PAYERS = range(70, 90)
GATEWAYS = range(90, 100)

Account.enable_unaudited_hdwallet_features()


@cache
def _seed() -> bytes:
    return seed_from_mnemonic(ANVIL_MNEMONIC, "")  # PBKDF2: once per process, not per key


@cache
def anvil_account(index: int) -> LocalAccount:
    """The anvil account at ``index`` (0-219), derived once and cached (derivation is slow)."""
    if not 0 <= index < ANVIL_ACCOUNT_COUNT:
        raise ConfigError(f"anvil account index {index} out of range 0-{ANVIL_ACCOUNT_COUNT - 1}")
    return Account.from_key(key_from_seed(_seed(), HD_PATH.format(index=index)))


def _from_pool(role: str, pool: Sequence[int], n: int) -> LocalAccount:
    if not 0 <= n < len(pool):
        raise ConfigError(f"no anvil key for {role} #{n}: the pool holds {len(pool)}")
    return anvil_account(pool[n])


def admin_account() -> LocalAccount:
    """Deploys and administers the contracts."""
    return anvil_account(ADMIN_INDEX)


def node_signer(n: int) -> LocalAccount:
    """The signer key of the n-th node (0-based: node id 100 is n=0)."""
    return _from_pool("node signer", NODE_SIGNERS, n)


def node_owner(n: int) -> LocalAccount:
    """The owner key of the n-th node (0-based), which claims and withdraws its fees."""
    return _from_pool("node owner", NODE_OWNERS, n)


def payer(n: int) -> LocalAccount:
    """The n-th payer (0-based)."""
    return _from_pool("payer", PAYERS, n)


def gateway(n: int) -> LocalAccount:
    """The n-th gateway's key (0-based)."""
    return _from_pool("gateway", GATEWAYS, n)


def key_hex(account: LocalAccount) -> str:
    """The account's private key as 0x-hex, for a service's environment; never log it."""
    return "0x" + bytes(account.key).hex()
