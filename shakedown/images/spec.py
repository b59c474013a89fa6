"""The names, tags and official references of a testnet's images; imports nothing of ours.

Every image shakedown builds is tagged ``shakedown/<name>:<content hash>`` and labelled
``shakedown.image=<name>`` and ``shakedown.hash=<full hash>``, so a changed input gives a new
tag and leftovers are easy to find (``docker images -f label=shakedown.image``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["registry", "local"]  # where the third-party images should come from

REPO_PREFIX = "shakedown"
LABEL_IMAGE = "shakedown.image"
LABEL_HASH = "shakedown.hash"
TAG_HASH_LEN = 12

# Debian base: what every image needs, faults included. tc and ip (iproute2), iptables and
# conntrack for network faults run inside a container with NET_ADMIN; procps for kill/pgrep
# (pause, crash); libfaketime for clock skew; python3 + venv for the node image and for
# health checks anywhere; curl and ping to look around when something is off.
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_REF = f"{REPO_PREFIX}/debian-base:{BASE_SUITE}"
BASE_PACKAGES = (
    "ca-certificates",
    "python3",
    "python3-venv",
    "iproute2",
    "iptables",
    "conntrack",
    "procps",
    "libfaketime",
    "netbase",
    "curl",
    "iputils-ping",
)
# Bump when base.py changes how the rootfs is made (packages and the files it writes are hashed).
BASE_RECIPE = "minbase-1"

# Official images for a machine that reaches a registry (DESIGN 2). anvil is pinned to the
# version of the npm package in tools/package.json so both paths run the same chain.
OFFICIAL_POSTGRES = "postgres:15"
OFFICIAL_ANVIL = "ghcr.io/foundry-rs/foundry:v1.7.1"
OFFICIAL_TOXIPROXY = "ghcr.io/shopify/toxiproxy:2.12.0"

# Where the project's own virtualenv lives inside the node image.
NODE_VENV = "/opt/shakedown/venv"


@dataclass(frozen=True)
class ImageSet:
    """The image references a testnet runs; ``official`` names those pulled from a registry.

    Without ``"toxiproxy"`` in ``official``, toxiproxy is the node image (run ``python -m
    shakedown.toxiproxy``); with it, Shopify's image (entrypoint ``/toxiproxy``). Both anvil
    images take a shell command line (``anvil --host 0.0.0.0``) and both postgres images take
    the official image's environment (``POSTGRES_PASSWORD``, ...) and ``-c`` options.

    Example: ``ImageSet(node="shakedown/node:3f2a...", anvil=..., postgres=..., toxiproxy=...)``
    """

    node: str
    anvil: str
    postgres: str
    toxiproxy: str
    official: frozenset[str] = frozenset()

    def refs(self) -> dict[str, str]:
        """The four references by role name, for logs and reports."""
        return {
            "node": self.node,
            "anvil": self.anvil,
            "postgres": self.postgres,
            "toxiproxy": self.toxiproxy,
        }


def local_ref(name: str, digest: str) -> str:
    """The tag of a locally built image: ``shakedown/<name>:<first 12 hex of its hash>``."""
    return f"{REPO_PREFIX}/{name}:{digest[:TAG_HASH_LEN]}"
