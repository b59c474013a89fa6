"""The server interceptor: what happens to every call before and after its handler.

``FrontDoor`` wraps each handler so that
- a client over its rate on the public API (publish, query) is refused RESOURCE_EXHAUSTED
  before its request is even parsed, so a flood costs the node as little as possible;
- a unary request that does not parse is answered INVALID_ARGUMENT with the parser's reason
  (gRPC's own deserializer would answer UNKNOWN, which tells a client nothing about whose
  fault it was);
- every finished call is counted by method and status code (GetStatus reports them).

    server = grpc.aio.server(interceptors=[FrontDoor(status, RateLimit(50))])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from refnode.status import NodeStatus

LIMITED = ("PublishPayerEnvelopes", "QueryEnvelopes")  # the public API; peers' calls are not


class RateLimit:
    """At most ``per_second`` calls per client (one client: one connection, as the node sees
    its peer address) on the public API; ``per_second=0`` is no limit (the bug on purpose:
    REFNODE_RATE_LIMIT=0)."""

    def __init__(self, per_second: int):
        self.per_second = per_second
        self._item = RateLimitItemPerSecond(max(1, per_second))
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def allows(self, client: str) -> bool:
        return not self.per_second or self._limiter.hit(self._item, client)


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is None or code == 0:  # unset: OK, or an exception the framework turns UNKNOWN
        return "OK" if error is None else "UNKNOWN"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class FrontDoor(grpc.aio.ServerInterceptor):
    def __init__(self, status: NodeStatus, limit: RateLimit):
        self.status = status
        self.limit = limit

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
            details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        method = str(details.method).rsplit("/", 1)[-1]
        if handler is None:
            return None
        if handler.unary_stream is not None:
            return self._streaming(handler, method)
        if handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, inner, limited = handler.request_deserializer, handler.unary_unary, method in LIMITED

        async def behaviour(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            error: BaseException | None = None
            try:
                if limited and not self.limit.allows(context.peer()):
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"rate limit: at most {self.limit.per_second} calls/s "
                                        "per client; slow down")
                try:
                    request = parse(raw)
                except Exception as e:  # DecodeError and kin: bytes, not a request
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                        f"request does not parse: {type(e).__name__}: {e}")
                return await inner(request, context)
            except BaseException as e:
                error = e
                raise
            finally:
                self.status.count(method, _code(context, error))

        return grpc.unary_unary_rpc_method_handler(
            behaviour, response_serializer=handler.response_serializer)

    def _streaming(self, handler: Any, method: str) -> Any:
        inner = handler.unary_stream

        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> None:
            error: BaseException | None = None
            try:
                await inner(request, context)
            except BaseException as e:
                error = e
                raise
            finally:
                self.status.count(method, _code(context, error))

        return grpc.unary_stream_rpc_method_handler(
            behaviour, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
