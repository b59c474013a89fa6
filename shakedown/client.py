"""Synchronous gRPC clients for refnode nodes and gateways, and envelope builders for traffic."""

from __future__ import annotations

import os
from collections.abc import Iterable

import grpc

from refnode.envelopes import Signer, client_envelope, sign_payer_envelope
from refnode.proto import refnode_pb2 as pb
from refnode.proto import refnode_pb2_grpc as rpc

# Reconnect within a second of a node coming back: gRPC's default backoff grows to 120 s, so
# a long-lived client (the scenarios' publishers) would skip a restarted node for minutes.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024),
                   # not min_reconnect_backoff_ms: gRPC also takes it as each connection
                   # attempt's timeout, and 100 ms fails any link slower than that
                   ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


def payer_envelopes(payer: Signer, target_node_id: int, count: int, *, topic: bytes = b"topic/0",
                    payload_size: int = 64) -> list[pb.PayerEnvelope]:
    """``count`` signed envelopes with distinct random payloads, all paid by ``payer``."""
    return [sign_payer_envelope(payer, client_envelope(topic, os.urandom(payload_size)),
                                target_node_id) for _ in range(count)]


def client_envelopes(count: int, *, topic: bytes = b"topic/0",
                     payload_size: int = 64) -> list[pb.ClientEnvelope]:
    return [pb.ClientEnvelope(topic=topic, payload=os.urandom(payload_size)) for _ in range(count)]


class NodeClient:
    """A node's ReplicationApi: ``NodeClient("127.0.0.1:5050").publish(envelopes)``."""

    def __init__(self, endpoint: str, timeout: float = 10.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self.channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self.stub = rpc.ReplicationApiStub(self.channel)

    def publish(self, envelopes: Iterable[pb.PayerEnvelope]) -> list[pb.OriginatorEnvelope]:
        response = self.stub.PublishPayerEnvelopes(
            pb.PublishPayerEnvelopesRequest(payer_envelopes=list(envelopes)), timeout=self.timeout)
        return list(response.originator_envelopes)

    def query(self, originators: Iterable[int] = (), after: dict[int, int] | None = None,
              limit: int = 0) -> list[pb.OriginatorEnvelope]:
        request = pb.QueryEnvelopesRequest(originator_node_ids=list(originators),
                                           last_seen=pb.Cursor(node_id_to_sequence_id=after or {}),
                                           limit=limit)
        return list(self.stub.QueryEnvelopes(request, timeout=self.timeout).envelopes)

    def query_all(self, originator: int, page: int = 5000) -> list[pb.OriginatorEnvelope]:
        """Every envelope of one originator, paging by sequence id."""
        found: list[pb.OriginatorEnvelope] = []
        after = 0
        while True:
            batch = self.query([originator], {originator: after}, limit=page)
            if not batch:
                return found
            found += batch
            after = pb.UnsignedOriginatorEnvelope.FromString(
                batch[-1].unsigned_originator_envelope).originator_sequence_id

    def health(self) -> pb.GetHealthResponse:
        return self.stub.GetHealth(pb.GetHealthRequest(), timeout=self.timeout)

    def status(self) -> pb.GetStatusResponse:
        """The streams the node serves and follows, and its calls by method and code."""
        return self.stub.GetStatus(pb.GetStatusRequest(), timeout=self.timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GatewayClient:
    """A gateway's PayerApi: clients send unsigned envelopes, the gateway pays."""

    def __init__(self, endpoint: str, timeout: float = 10.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self.channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self.stub = rpc.PayerApiStub(self.channel)

    def publish(self, envelopes: Iterable[pb.ClientEnvelope],
                target_node_id: int = 0) -> list[pb.OriginatorEnvelope]:
        request = pb.PublishClientEnvelopesRequest(envelopes=list(envelopes),
                                                   target_node_id=target_node_id)
        return list(self.stub.PublishClientEnvelopes(request,
                                                     timeout=self.timeout).originator_envelopes)

    def health(self) -> pb.GetGatewayHealthResponse:
        return self.stub.GetHealth(pb.GetGatewayHealthRequest(), timeout=self.timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
