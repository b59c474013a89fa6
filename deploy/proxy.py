"""Deploy the proxy role of the testnet named by the inventory (its network first)."""

from pyinfra import host

from shakedown.deploy import testnet_of
from shakedown.deploy.testnet import run_role

run_role("proxy", testnet_of(host))
