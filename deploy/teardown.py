"""Remove a testnet: ``pyinfra inventories/local.py deploy/teardown.py``."""

from pyinfra import host

from shakedown.deploy import testnet_of
from shakedown.deploy.testnet import testnet_down

testnet_down(testnet_of(host))
