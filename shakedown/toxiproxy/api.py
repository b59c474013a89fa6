"""toxiproxy's HTTP API: routes, handlers, and the proxy collection behind them.

Status codes, bodies and the order of checks follow Shopify's toxiproxy (its api.go and
collections), so a client sees the same answer from either server: 201 on proxy create and
populate, 200 on show/update and on toxic create, 204 on delete and reset, 404/409/400 with
``{"error": ..., "status": ...}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from shakedown.toxiproxy.httpd import Request, Response
from shakedown.toxiproxy.model import (
    BAD_REQUEST_BODY,
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_EXISTS,
    ApiError,
    ProxyInput,
    decode_json,
    decode_object,
    parse_new_toxic,
    parse_proxy,
    updated_toxic,
    with_attributes,
)
from shakedown.toxiproxy.proxy import Proxy

log = logging.getLogger(__name__)

VERSION = "2.12.0+shakedown"  # the toxiproxy API level we follow, and who we are
NO_DEFAULTS = ProxyInput("", "", "", True)

Route = Callable[..., Awaitable[Response]]


class Api:
    """The proxy collection and the handlers that read and change it."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()  # one change at a time, as toxiproxy's collection lock
        self.routes: dict[tuple[str, ...], dict[str, Route]] = {
            ("reset",): {"POST": self.reset},
            ("version",): {"GET": self.version},
            ("populate",): {"POST": self.populate},
            ("proxies",): {"GET": self.list_proxies, "POST": self.create_proxy},
            ("proxies", "*"): {
                "GET": self.show_proxy,
                "POST": self.update_proxy,
                "PATCH": self.update_proxy,
                "DELETE": self.delete_proxy,
            },
            ("proxies", "*", "toxics"): {"GET": self.list_toxics, "POST": self.create_toxic},
            ("proxies", "*", "toxics", "*"): {
                "GET": self.show_toxic,
                "POST": self.update_toxic,
                "PATCH": self.update_toxic,
                "DELETE": self.delete_toxic,
            },
        }

    async def handle(self, request: Request) -> Response:
        """Route one request; API errors become toxiproxy's JSON error bodies."""
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response.text(403, "User agent not allowed\n")
        found = self._route(urlsplit(request.path).path)
        if found is None:
            return Response.text(404, "404 page not found\n")
        methods, args = found
        route = methods.get(request.method)
        if route is None:
            return Response.text(405, "")
        try:
            async with self.lock:
                return await route(request, *args)
        except ApiError as e:
            return Response.json(e.status, e.body())
        except Exception as e:  # a bug of ours: answer like toxiproxy's untyped errors
            log.exception("%s %s failed", request.method, request.path)
            return Response.json(500, {"error": str(e), "status": 500})

    def _route(self, path: str) -> tuple[dict[str, Route], list[str]] | None:
        if not path.startswith("/"):
            return None
        parts = [unquote(p) for p in path[1:].split("/")]
        if any(not p for p in parts):
            return None
        for pattern, methods in self.routes.items():
            if len(pattern) != len(parts):
                continue
            pairs = list(zip(pattern, parts, strict=True))
            if all(want in ("*", got) for want, got in pairs):
                return methods, [got for want, got in pairs if want == "*"]
        return None

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    async def version(self, request: Request) -> Response:
        """GET /version: ``{"version": "..."}`` as toxiproxy >= 2.6 answers."""
        body = f'{{"version": "{VERSION}"}}\n'.encode()
        return Response(200, body, "application/json;charset=utf-8")

    async def reset(self, request: Request) -> Response:
        """POST /reset: enable every proxy and remove every toxic."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.reset_toxics()
        return Response(204)

    async def list_proxies(self, request: Request) -> Response:
        """GET /proxies: a map from name to proxy."""
        return Response.json(200, {n: p.to_json() for n, p in self.proxies.items()})

    async def create_proxy(self, request: Request) -> Response:
        """POST /proxies: 201 with the proxy; ``listen`` shows the bound port."""
        spec = parse_proxy(decode_object(request.body), NO_DEFAULTS)
        if spec.name in self.proxies:
            raise PROXY_EXISTS
        proxy = Proxy(spec.name, spec.listen, spec.upstream)
        if spec.enabled:
            await proxy.start()
        self.proxies[spec.name] = proxy
        return Response.json(201, proxy.to_json())

    async def populate(self, request: Request) -> Response:
        """POST /populate: create or replace (when listen/upstream differ) a list of proxies."""
        items = decode_json(request.body)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BAD_REQUEST_BODY.wrap("expected a JSON array of proxy objects")
        specs = [parse_proxy(d, NO_DEFAULTS, f" at proxy {i + 1}") for i, d in enumerate(items)]
        done: list[Proxy] = []
        for spec in specs:
            try:
                done.append(await self._add_or_replace(spec))
            except ApiError as e:
                return Response.json(e.status, {**e.body(), "proxies": _listing(done)})
        return Response.json(201, {"proxies": _listing(done)})

    async def _add_or_replace(self, spec: ProxyInput) -> Proxy:
        existing = self.proxies.get(spec.name)
        if existing is not None:
            if not existing.differs(spec):
                return existing
            existing.stop()
        proxy = Proxy(spec.name, spec.listen, spec.upstream)
        if spec.enabled:
            await proxy.start()
        self.proxies[spec.name] = proxy
        return proxy

    async def show_proxy(self, request: Request, name: str) -> Response:
        """GET /proxies/{name}."""
        return Response.json(200, self._proxy(name).to_json())

    async def update_proxy(self, request: Request, name: str) -> Response:
        """POST /proxies/{name}: change listen, upstream or enabled; absent fields stay."""
        proxy = self._proxy(name)
        current = ProxyInput(proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        data: dict[str, Any] = {**decode_object(request.body), "name": proxy.name}
        await proxy.update(parse_proxy(data, current))
        return Response.json(200, proxy.to_json())

    async def delete_proxy(self, request: Request, name: str) -> Response:
        """DELETE /proxies/{name}: stop it, close its connections, forget it."""
        self._proxy(name).stop()
        del self.proxies[name]
        return Response(204)

    async def list_toxics(self, request: Request, name: str) -> Response:
        """GET /proxies/{name}/toxics: an array, upstream toxics first."""
        return Response.json(200, [t.to_json() for t in self._proxy(name).ordered_toxics()])

    async def create_toxic(self, request: Request, name: str) -> Response:
        """POST /proxies/{name}/toxics: 200 with the toxic (toxiproxy does not answer 201)."""
        proxy = self._proxy(name)
        data = decode_object(request.body)
        toxic = parse_new_toxic(data)
        if any(t.name == toxic.name for t in proxy.toxics):
            raise TOXIC_EXISTS
        toxic = with_attributes(toxic, data)
        proxy.add_toxic(toxic)
        return Response.json(200, toxic.to_json())

    async def show_toxic(self, request: Request, name: str, toxic: str) -> Response:
        """GET /proxies/{name}/toxics/{toxic}."""
        return Response.json(200, self._proxy(name).find_toxic(toxic).to_json())

    async def update_toxic(self, request: Request, name: str, toxic: str) -> Response:
        """POST /proxies/{name}/toxics/{toxic}: new attributes and toxicity, applied live."""
        proxy = self._proxy(name)
        current = proxy.find_toxic(toxic)
        new = updated_toxic(current, decode_object(request.body))
        proxy.replace_toxic(new)
        return Response.json(200, new.to_json())

    async def delete_toxic(self, request: Request, name: str, toxic: str) -> Response:
        """DELETE /proxies/{name}/toxics/{toxic}: 204; open connections feel it at once."""
        self._proxy(name).remove_toxic(toxic)
        return Response(204)

    def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        for proxy in self.proxies.values():
            proxy.stop()


def _listing(proxies: list[Proxy]) -> list[dict[str, Any]] | None:
    return [p.to_json() for p in proxies] or None
