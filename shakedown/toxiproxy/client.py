"""A small synchronous client for the toxiproxy HTTP API (Shopify's server or ours).

Errors are shakedown's: ``NotFoundError`` for a missing proxy or toxic, ``ConfigError`` for a
rejected request (duplicate name, bad stream/type/attributes, listen address in use),
``UnreachableError`` when the server does not answer. Each message is one line naming the
proxy or toxic and the server. Updates use POST, which every toxiproxy 2.x accepts.

    api = ToxiproxyClient("http://127.0.0.1:8474")
    api.create_proxy("node-100", "127.0.0.1:0", "127.0.0.1:5050")
    api.add_toxic("node-100", "latency", attributes={"latency": 200}, name="sd-lat-1")
    api.remove_toxic("node-100", "sd-lat-1", missing_ok=True)
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from shakedown.errors import ConfigError, NotFoundError, ShakedownError, UnreachableError
from shakedown.toxiproxy.model import Toxic

DEFAULT_URL = "http://127.0.0.1:8474"


@dataclass(frozen=True)
class Proxy:
    """A proxy as the server shows it; ``listen`` carries the bound port."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proxy:
        """Build from the API's JSON object."""
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()),
        )

    @property
    def port(self) -> int:
        """The listen port (useful after asking for port 0)."""
        return int(self.listen.rpartition(":")[2])


class ToxiproxyClient:
    """Talks to one toxiproxy server; one short HTTP connection per call."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 10.0) -> None:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"toxiproxy url {url!r}: expected http://HOST:PORT")
        self.host = parts.hostname
        self.port = parts.port or 8474
        self.timeout = timeout
        self.address = f"{parts.hostname}:{self.port}"

    def version(self) -> str:
        """The server's version (JSON since toxiproxy 2.6, plain text before)."""
        body = self._call("GET", "/version", what="version")
        try:
            return str(json.loads(body)["version"])
        except (ValueError, KeyError, TypeError):
            return body.decode(errors="replace").strip()

    def proxies(self) -> dict[str, Proxy]:
        """Every proxy by name."""
        data = self._json("GET", "/proxies", what="proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def get_proxy(self, name: str) -> Proxy:
        """One proxy with its toxics."""
        return Proxy.from_json(self._json("GET", _p(name), what=f"proxy {name!r}"))

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        """Create a proxy; listen ``127.0.0.1:0`` picks a free port (see ``Proxy.port``)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(self._json("POST", "/proxies", body, what=f"proxy {name!r}"))

    def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Change some fields; a new listen or upstream restarts the proxy."""
        body = {
            k: v
            for k, v in {"listen": listen, "upstream": upstream, "enabled": enabled}.items()
            if v is not None
        }
        return Proxy.from_json(self._json("POST", _p(name), body, what=f"proxy {name!r}"))

    def enable(self, name: str) -> Proxy:
        """Enable a proxy (idempotent)."""
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> Proxy:
        """Disable a proxy: its listener and open connections close (idempotent)."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str, missing_ok: bool = False) -> None:
        """Delete a proxy; with ``missing_ok`` an absent one counts as deleted."""
        self._call("DELETE", _p(name), what=f"proxy {name!r}", missing_ok=missing_ok)

    def populate(self, proxies: list[dict[str, Any]] | list[Proxy]) -> list[Proxy]:
        """Create or replace (when listen or upstream differ) a list of proxies."""
        body = [_proxy_body(p) for p in proxies]
        data = self._json("POST", "/populate", body, what="populate")
        return [Proxy.from_json(p) for p in data.get("proxies") or []]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset", what="reset")

    def toxics(self, proxy: str) -> list[Toxic]:
        """A proxy's toxics, upstream ones first."""
        data = self._json("GET", f"{_p(proxy)}/toxics", what=f"proxy {proxy!r}")
        return [Toxic.from_json(t) for t in data]

    def get_toxic(self, proxy: str, name: str) -> Toxic:
        """One toxic."""
        path = f"{_p(proxy)}/toxics/{quote(name, safe='')}"
        return Toxic.from_json(self._json("GET", path, what=_t(proxy, name)))

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
    ) -> Toxic:
        """Add a toxic; it applies at once, to open connections too.

        ``name`` defaults to the server's ``<type>_<stream>``; give your own tag so clearing
        needs nothing but the name.
        """
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name:
            body["name"] = name
        what = _t(proxy, name or f"{type}_{stream}")
        return Toxic.from_json(self._json("POST", f"{_p(proxy)}/toxics", body, what=what))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: dict[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change a toxic's attributes (merged) or toxicity; name, type and stream stay."""
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"{_p(proxy)}/toxics/{quote(name, safe='')}"
        return Toxic.from_json(self._json("POST", path, body, what=_t(proxy, name)))

    def remove_toxic(self, proxy: str, name: str, missing_ok: bool = False) -> None:
        """Remove a toxic; with ``missing_ok`` an absent toxic or proxy counts as removed."""
        path = f"{_p(proxy)}/toxics/{quote(name, safe='')}"
        self._call("DELETE", path, what=_t(proxy, name), missing_ok=missing_ok)

    def _json(self, method: str, path: str, body: Any = None, *, what: str) -> Any:
        raw = self._call(method, path, body, what=what)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ShakedownError(
                f"toxiproxy {self.address}: {what}: answer is not JSON: {raw[:80]!r}"
            ) from e

    def _call(
        self, method: str, path: str, body: Any = None, *, what: str, missing_ok: bool = False
    ) -> bytes:
        status, raw = self._send(method, path, body, what)
        if 200 <= status < 300 or (missing_ok and status == 404):
            return raw
        message = _error_text(raw)
        line = f"toxiproxy {self.address}: {what}: {message} (HTTP {status} on {method} {path})"
        if status == 404:
            raise NotFoundError(line)
        if status in (400, 405, 409) or (status == 500 and "listen" in message):
            raise ConfigError(line)
        raise ShakedownError(line)

    def _send(self, method: str, path: str, body: Any, what: str) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": "shakedown-toxiproxy-client", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as e:
            raise UnreachableError(
                f"toxiproxy {self.address} did not answer ({what}: {method} {path}): {e}; "
                "is the server running? (python -m shakedown.toxiproxy)"
            ) from e
        finally:
            conn.close()


def _p(name: str) -> str:
    return f"/proxies/{quote(name, safe='')}"


def _t(proxy: str, name: str) -> str:
    return f"toxic {name!r} on proxy {proxy!r}"


def _proxy_body(proxy: dict[str, Any] | Proxy) -> dict[str, Any]:
    if isinstance(proxy, Proxy):
        return {
            "name": proxy.name,
            "listen": proxy.listen,
            "upstream": proxy.upstream,
            "enabled": proxy.enabled,
        }
    return dict(proxy)


def _error_text(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip().splitlines()[0] if raw.strip() else "no body"
