"""toxiproxy's HTTP API: routes, handlers, and the proxy collection behind them.

Status codes, bodies and the order of checks follow Shopify's toxiproxy 2.12 (its api.go and
collections), so a client sees the same answer from either server: 201 on proxy create and
populate, 200 on show/update and on toxic create, 204 on delete and reset, 404/409/400/500
with ``{"error": ..., "status": ...}`` written as Go's ``http.Error`` does (``text/plain``, a
trailing newline), except ``/populate``, which answers JSON with ``"proxies"`` (null when none
were made) beside the error. ``/version`` gives the plain API version we follow (clients
compare it, e.g. the Ruby client's PATCH check); who we are is in every reply's ``Server``
header. ``/metrics`` exists only when asked for, as with toxiproxy's ``-proxy-metrics``.

A listen address that does not resolve is refused by an update or populate before anything
changes (the proxy keeps running as it was), as 2.12 does; one that resolves but cannot be
bound leaves the proxy disabled at the new address, also as 2.12 does. JSON bodies are not
HTML-escaped (Go writes ``<`` as ``\\u003c``); the text they decode to is the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any
from urllib.parse import unquote, urlsplit

from shakedown.toxiproxy.httpd import Request, Response
from shakedown.toxiproxy.metrics import ByteCounters, exposition, metrics_registry
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

VERSION = "2.12.0"  # the toxiproxy release whose API we follow; plain semver for clients
NO_DEFAULTS = ProxyInput("", "", "", True)


def _own_version() -> str:
    try:
        return package_version("shakedown")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


SERVER = f"shakedown-toxiproxy/{_own_version()}"  # the Server header: who answers

Route = Callable[..., Awaitable[Response]]


class Api:
    """The proxy collection and the handlers that read and change it."""

    def __init__(self, *, proxy_metrics: bool = False, runtime_metrics: bool = False) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()  # one change at a time, as toxiproxy's collection lock
        self.counters = ByteCounters()
        self.registry = metrics_registry(
            self.counters, proxy=proxy_metrics, runtime=runtime_metrics
        )
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
        if self.registry is not None:
            self.routes[("metrics",)] = {"GET": self.metrics}

    async def handle(self, request: Request) -> Response:
        """Route one request and name ourselves in the ``Server`` header."""
        response = await self._dispatch(request)
        return dataclasses.replace(response, headers={**response.headers, "Server": SERVER})

    async def _dispatch(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response.error(403, "User agent not allowed")
        found = self._route(urlsplit(request.path).path)
        if found is None:
            return Response.error(404, "404 page not found")
        methods, args = found
        route = methods.get(request.method)
        if route is None:
            return Response.text(405, "")
        try:
            async with self.lock:
                return await route(request, *args)
        except ApiError as e:
            return _error(e)
        except Exception as e:  # a bug of ours: answer like toxiproxy's untyped errors
            log.exception("%s %s failed", request.method, request.path)
            return _error(ApiError(str(e), 500))

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
        """GET /version: ``{"version": "2.12.0"}`` and a newline, as toxiproxy >= 2.7 answers."""
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
        proxy = Proxy(spec.name, spec.listen, spec.upstream, self.counters)
        if spec.enabled:
            await proxy.start()
        self.proxies[spec.name] = proxy
        return Response.json(201, proxy.to_json())

    async def metrics(self, request: Request) -> Response:
        """GET /metrics: Prometheus exposition of what the server was started to serve."""
        assert self.registry is not None  # routed only when metrics were asked for
        return exposition(self.registry, request.headers.get("accept", ""))

    async def populate(self, request: Request) -> Response:
        """POST /populate: create or replace (when listen/upstream differ) a list of proxies.

        Every answer is JSON with ``proxies`` (those made before a failure, or null); an
        error adds ``error`` and ``status`` beside it.
        """
        done: list[Proxy] = []
        try:
            items = decode_json(request.body)
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise BAD_REQUEST_BODY.wrap("expected a JSON array of proxy objects")
            specs = [
                parse_proxy(d, NO_DEFAULTS, f" at proxy {i + 1}") for i, d in enumerate(items)
            ]
            for spec in specs:
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
        proxy = Proxy(spec.name, spec.listen, spec.upstream, self.counters)
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


def _error(error: ApiError) -> Response:
    """toxiproxy's error reply: its JSON body sent through Go's ``http.Error``."""
    return Response.error(error.status, Response.json(error.status, error.body()).body.decode())


def _listing(proxies: list[Proxy]) -> list[dict[str, Any]] | None:
    return [p.to_json() for p in proxies] or None
