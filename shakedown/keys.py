"""Anvil's well-known accounts, split by role so no two parts of a testnet share a key.

Locally every key derives from anvil's public test mnemonic (HD path m/44'/60'/0'/0/<index>);
anvil funds them all when started with ``--accounts 100`` (``shakedown.procs.anvil`` does).
These keys are public knowledge: fine for a local chain, never for anything else.

Role split (account indices):

    admin            0        deploys and administers the contracts
    (spare)          1-9      free for tests and tools
    node signers     10-39    node n signs envelopes and attestations with index 10 + n
    node owners      40-69    node n claims and withdraws fees with index 40 + n
    payers           70-89    deposit into the PayerRegistry
    gateways         90-99    sign payer envelopes

    admin = admin_account(); signer = node_signer(0)   # the first node's signer
"""

from __future__ import annotations

from functools import cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

from shakedown.errors import ConfigError

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_COUNT = 100
HD_PATH = "m/44'/60'/0'/0/{index}"

ADMIN_INDEX = 0
NODE_SIGNERS = range(10, 40)
NODE_OWNERS = range(40, 70)
PAYERS = range(70, 90)
GATEWAYS = range(90, 100)

Account.enable_unaudited_hdwallet_features()


@cache
def anvil_account(index: int) -> LocalAccount:
    """The anvil account at ``index`` (0-99), derived once and cached (derivation is slow)."""
    if not 0 <= index < ANVIL_ACCOUNT_COUNT:
        raise ConfigError(f"anvil account index {index} out of range 0-{ANVIL_ACCOUNT_COUNT - 1}")
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=HD_PATH.format(index=index))


def _from_pool(role: str, pool: range, n: int) -> LocalAccount:
    if not 0 <= n < len(pool):
        raise ConfigError(
            f"no anvil key for {role} #{n}: the pool holds {len(pool)} "
            f"(indices {pool.start}-{pool.stop - 1})"
        )
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
