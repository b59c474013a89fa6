"""Server interceptors: what happens to every call before its handler sees it.

``ParseInHandler`` deserializes unary requests itself, so a request that does not parse is
answered INVALID_ARGUMENT with the parser's reason (gRPC's own deserializer would answer
UNKNOWN, which tells a client nothing about whose fault it was).

    server = grpc.aio.server(interceptors=[ParseInHandler()])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc


class ParseInHandler(grpc.aio.ServerInterceptor):
    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
            details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, inner = handler.request_deserializer, handler.unary_unary

        async def behaviour(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                request = parse(raw)
            except Exception as e:  # DecodeError and kin: the client sent bytes, not a request
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"request does not parse: {type(e).__name__}: {e}")
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behaviour, response_serializer=handler.response_serializer)
