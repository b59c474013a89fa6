"""Deploy a whole testnet: ``pyinfra inventories/local.py deploy/testnet.py``."""

from pyinfra import host

from shakedown.deploy import testnet_of
from shakedown.deploy.testnet import testnet_up

testnet_up(testnet_of(host))
