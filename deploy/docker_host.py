"""Make a fresh VM a Docker host: ``pyinfra INVENTORY deploy/docker_host.py``.

Installs and starts Debian's Docker engine, then carries the testnet's images from this
machine (host data ``carry_images`` names others, ``[]`` none).
"""

from pyinfra import host

from shakedown.deploy.docker_host import docker_host, testnet_images

docker_host(images=testnet_images(host))
