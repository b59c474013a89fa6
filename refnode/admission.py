"""What a node takes on its publish API: every rule a payer envelope must pass before it is
sequenced, each refusal with its gRPC status and the index of the envelope at fault.

Cheap rules first (the batch size, then per envelope its target, size and retention), then
the parse and the payer's signature, then who the payer is: a node's signer never pays.
A request is taken whole or not at all. Replays of stored envelopes are the publisher's to
refuse (it alone sees what is stored when it sequences).

    admission = Admission(node_id=100, membership=membership)
    envelopes = admission.admit(request)   # raises Refused(code, message)
"""

from __future__ import annotations

import grpc

from refnode.envelopes import InvalidEnvelope, PayerEnvelope, open_payer_envelope
from refnode.membership import Membership
from refnode.proto import refnode_pb2 as pb

MAX_PUBLISH = 10_000                 # envelopes per publish request
MAX_CLIENT_ENVELOPE = 1024 * 1024    # bytes of one client envelope
MAX_RETENTION_DAYS = 3650            # beyond this, storage fees would overflow their field
MAX_REQUEST = 8 * 1024 * 1024        # bytes of one request (gRPC answers RESOURCE_EXHAUSTED)


class Refused(Exception):
    """A request the node does not take: the gRPC status and why."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Admission:
    def __init__(self, node_id: int, membership: Membership, check_signatures: bool = True):
        self.node_id = node_id
        self.membership = membership
        self.check_signatures = check_signatures  # False: the bug on purpose

    def check_size(self, request: pb.PublishPayerEnvelopesRequest) -> int:
        """The number of envelopes, if within bounds (the first and cheapest rule)."""
        n = len(request.payer_envelopes)
        if not 1 <= n <= MAX_PUBLISH:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"send 1 to {MAX_PUBLISH} envelopes, got {n}")
        return n

    def admit(self, request: pb.PublishPayerEnvelopesRequest,
              opened_by: list[PayerEnvelope | InvalidEnvelope] | None = None
              ) -> list[PayerEnvelope]:
        """Every envelope of the request, opened; Refused at the first rule one breaks.
        ``opened_by``: the envelopes already opened (by the node's signature workers), in
        order; without it they are opened here."""
        self.check_size(request)
        node_signers = {n.signer.lower(): i for i, n in self.membership.nodes.items()}
        opened: list[PayerEnvelope] = []
        first_of: dict[bytes, int] = {}
        for i, env in enumerate(request.payer_envelopes):
            self._check_shape(i, env)
            try:
                payer_env = _opened(opened_by[i]) if opened_by is not None else \
                    open_payer_envelope(env, self.check_signatures)
            except InvalidEnvelope as e:
                raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"envelope {i}: {e}") from None
            signer_of = node_signers.get(payer_env.payer.lower())
            if signer_of is not None:
                raise Refused(grpc.StatusCode.PERMISSION_DENIED,
                              f"envelope {i}: payer {payer_env.payer} is node {signer_of}'s "
                              "signer; nodes do not pay for envelopes")
            if payer_env.digest in first_of:
                raise Refused(grpc.StatusCode.ALREADY_EXISTS,
                              f"envelope {i} repeats envelope {first_of[payer_env.digest]} "
                              "of this request")
            first_of[payer_env.digest] = i
            opened.append(payer_env)
        return opened

    def _check_shape(self, i: int, env: pb.PayerEnvelope) -> None:
        if env.target_originator != self.node_id:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"envelope {i} targets node {env.target_originator}; this is node "
                          f"{self.node_id}")
        size = len(env.unsigned_client_envelope)
        if size > MAX_CLIENT_ENVELOPE:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"envelope {i}: client envelope of {size} bytes; at most "
                          f"{MAX_CLIENT_ENVELOPE}")
        if not 1 <= env.message_retention_days <= MAX_RETENTION_DAYS:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"envelope {i}: retention of {env.message_retention_days} days; "
                          f"1 to {MAX_RETENTION_DAYS}")


def _opened(result: PayerEnvelope | InvalidEnvelope) -> PayerEnvelope:
    if isinstance(result, InvalidEnvelope):
        raise result
    return result
