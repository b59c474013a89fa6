"""A minimal HTTP/1.1 server on asyncio streams, enough for toxiproxy's JSON API.

Keep-alive, Content-Length and chunked request bodies, ``Expect: 100-continue``. No TLS, no
pipelining guarantees beyond in-order replies; the API is small and local.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

MAX_BODY = 16 << 20


@dataclass(frozen=True)
class Request:
    """A parsed request; ``path`` is still percent-encoded."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    """A reply; ``body`` is sent as is with ``content_type``."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any) -> Response:
        """A JSON reply (compact, like Go's encoder)."""
        return cls(status, json.dumps(value, separators=(",", ":")).encode())

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        """A plain-text reply."""
        return cls(status, text.encode(), "text/plain; charset=utf-8")

    @classmethod
    def error(cls, status: int, text: str) -> Response:
        """An error written as Go's ``http.Error`` writes it: plain text, nosniff, a newline."""
        return cls(status, f"{text}\n".encode(), "text/plain; charset=utf-8",
                   {"X-Content-Type-Options": "nosniff"})


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP request we can read."""


async def serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handler
) -> None:
    """Answer requests on one client connection until it closes or asks to."""
    try:
        while True:
            try:
                request = await read_request(reader, writer)
            except BadRequest as e:
                await _send(writer, Response.text(400, f"400 Bad Request: {e}"), close=True)
                return
            if request is None:
                return
            response = await handle(request)
            close = _wants_close(request)
            await _send(writer, response, close)
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """Read one request; None when the client closed between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("truncated request head") from e
        return None
    except asyncio.LimitOverrunError as e:
        raise BadRequest("request head too large") from e
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"malformed request line {lines[0][:80]!r}")
    headers = {"_version": parts[2]}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    return Request(parts[0].upper(), parts[1], headers, body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length = headers.get("content-length", "0") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        raise BadRequest(f"bad content-length {length!r}")
    return await reader.readexactly(int(length)) if int(length) else b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    for _ in range(1 << 16):
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as e:
            raise BadRequest("bad chunk size") from e
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size + 2)
        del body[-2:]
        if len(body) > MAX_BODY:
            raise BadRequest("body too large")
    raise BadRequest("too many chunks")


def _wants_close(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.headers.get("_version") == "HTTP/1.0":
        return connection != "keep-alive"
    return connection == "close"


async def _send(writer: asyncio.StreamWriter, response: Response, close: bool) -> None:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.status != 204:
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
    lines.extend(f"{k}: {v}" for k, v in response.headers.items())
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    writer.write(head + (response.body if response.status != 204 else b""))
    await writer.drain()
