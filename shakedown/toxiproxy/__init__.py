"""toxiproxy for shakedown: a compatible server of our own, and a client for either server.

Shopify's toxiproxy cannot be installed everywhere (no GitHub downloads, no image registry),
so shakedown ships a server with the same HTTP API and the same toxics
(``python -m shakedown.toxiproxy``); ``ToxiproxyClient`` talks to either.
"""

from shakedown.toxiproxy.client import Proxy, Toxic, ToxiproxyClient

__all__ = ["Proxy", "Toxic", "ToxiproxyClient"]
