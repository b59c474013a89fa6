"""Image references for a testnet: the inventory's, else built or found by shakedown.images."""

from __future__ import annotations

from functools import cache

from shakedown.model import Images, Testnet


@cache
def _ensured() -> Images:
    from shakedown.images import connect, ensure_images

    found = ensure_images(connect(), log=lambda line: None)
    return Images(node=found.node, anvil=found.anvil, postgres=found.postgres,
                  toxiproxy=found.toxiproxy,
                  toxiproxy_official="toxiproxy" in found.official)


def images_for(testnet: Testnet) -> Images:
    """The inventory's images when it names all of them; otherwise ensure the local set."""
    given = testnet.images
    if given.node and given.anvil and given.postgres:
        return Images(node=given.node, anvil=given.anvil, postgres=given.postgres,
                      toxiproxy=given.toxiproxy or given.node,
                      toxiproxy_official=given.toxiproxy_official)
    return _ensured()
