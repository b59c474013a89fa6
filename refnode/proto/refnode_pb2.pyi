from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttestationVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTESTATION_PENDING: _ClassVar[AttestationVerdict]
    ATTESTATION_APPROVED: _ClassVar[AttestationVerdict]
    ATTESTATION_REJECTED: _ClassVar[AttestationVerdict]
ATTESTATION_PENDING: AttestationVerdict
ATTESTATION_APPROVED: AttestationVerdict
ATTESTATION_REJECTED: AttestationVerdict

class ClientEnvelope(_message.Message):
    __slots__ = ("topic", "payload")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    payload: bytes
    def __init__(self, topic: _Optional[bytes] = ..., payload: _Optional[bytes] = ...) -> None: ...

class PayerEnvelope(_message.Message):
    __slots__ = ("unsigned_client_envelope", "payer_signature", "target_originator", "message_retention_days")
    UNSIGNED_CLIENT_ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PAYER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TARGET_ORIGINATOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    unsigned_client_envelope: bytes
    payer_signature: bytes
    target_originator: int
    message_retention_days: int
    def __init__(self, unsigned_client_envelope: _Optional[bytes] = ..., payer_signature: _Optional[bytes] = ..., target_originator: _Optional[int] = ..., message_retention_days: _Optional[int] = ...) -> None: ...

class UnsignedOriginatorEnvelope(_message.Message):
    __slots__ = ("originator_node_id", "originator_sequence_id", "originator_ns", "payer_envelope_bytes", "base_fee_picodollars", "congestion_fee_picodollars", "expiry_unixtime")
    ORIGINATOR_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINATOR_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINATOR_NS_FIELD_NUMBER: _ClassVar[int]
    PAYER_ENVELOPE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BASE_FEE_PICODOLLARS_FIELD_NUMBER: _ClassVar[int]
    CONGESTION_FEE_PICODOLLARS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_UNIXTIME_FIELD_NUMBER: _ClassVar[int]
    originator_node_id: int
    originator_sequence_id: int
    originator_ns: int
    payer_envelope_bytes: bytes
    base_fee_picodollars: int
    congestion_fee_picodollars: int
    expiry_unixtime: int
    def __init__(self, originator_node_id: _Optional[int] = ..., originator_sequence_id: _Optional[int] = ..., originator_ns: _Optional[int] = ..., payer_envelope_bytes: _Optional[bytes] = ..., base_fee_picodollars: _Optional[int] = ..., congestion_fee_picodollars: _Optional[int] = ..., expiry_unixtime: _Optional[int] = ...) -> None: ...

class OriginatorEnvelope(_message.Message):
    __slots__ = ("unsigned_originator_envelope", "originator_signature")
    UNSIGNED_ORIGINATOR_ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ORIGINATOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    unsigned_originator_envelope: bytes
    originator_signature: bytes
    def __init__(self, unsigned_originator_envelope: _Optional[bytes] = ..., originator_signature: _Optional[bytes] = ...) -> None: ...

class Cursor(_message.Message):
    __slots__ = ("node_id_to_sequence_id",)
    class NodeIdToSequenceIdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_TO_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id_to_sequence_id: _containers.ScalarMap[int, int]
    def __init__(self, node_id_to_sequence_id: _Optional[_Mapping[int, int]] = ...) -> None: ...

class PublishPayerEnvelopesRequest(_message.Message):
    __slots__ = ("payer_envelopes",)
    PAYER_ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    payer_envelopes: _containers.RepeatedCompositeFieldContainer[PayerEnvelope]
    def __init__(self, payer_envelopes: _Optional[_Iterable[_Union[PayerEnvelope, _Mapping]]] = ...) -> None: ...

class PublishPayerEnvelopesResponse(_message.Message):
    __slots__ = ("originator_envelopes",)
    ORIGINATOR_ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    originator_envelopes: _containers.RepeatedCompositeFieldContainer[OriginatorEnvelope]
    def __init__(self, originator_envelopes: _Optional[_Iterable[_Union[OriginatorEnvelope, _Mapping]]] = ...) -> None: ...

class QueryEnvelopesRequest(_message.Message):
    __slots__ = ("originator_node_ids", "last_seen", "limit")
    ORIGINATOR_NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    originator_node_ids: _containers.RepeatedScalarFieldContainer[int]
    last_seen: Cursor
    limit: int
    def __init__(self, originator_node_ids: _Optional[_Iterable[int]] = ..., last_seen: _Optional[_Union[Cursor, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class QueryEnvelopesResponse(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[OriginatorEnvelope]
    def __init__(self, envelopes: _Optional[_Iterable[_Union[OriginatorEnvelope, _Mapping]]] = ...) -> None: ...

class SubscribeEnvelopesRequest(_message.Message):
    __slots__ = ("originator_node_ids", "last_seen")
    ORIGINATOR_NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    originator_node_ids: _containers.RepeatedScalarFieldContainer[int]
    last_seen: Cursor
    def __init__(self, originator_node_ids: _Optional[_Iterable[int]] = ..., last_seen: _Optional[_Union[Cursor, _Mapping]] = ...) -> None: ...

class SubscribeEnvelopesResponse(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[OriginatorEnvelope]
    def __init__(self, envelopes: _Optional[_Iterable[_Union[OriginatorEnvelope, _Mapping]]] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ("serving", "node_id", "version", "vector_clock", "api_enabled", "sync_enabled", "replicating_from")
    SERVING_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_CLOCK_FIELD_NUMBER: _ClassVar[int]
    API_ENABLED_FIELD_NUMBER: _ClassVar[int]
    SYNC_ENABLED_FIELD_NUMBER: _ClassVar[int]
    REPLICATING_FROM_FIELD_NUMBER: _ClassVar[int]
    serving: bool
    node_id: int
    version: str
    vector_clock: Cursor
    api_enabled: bool
    sync_enabled: bool
    replicating_from: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, serving: _Optional[bool] = ..., node_id: _Optional[int] = ..., version: _Optional[str] = ..., vector_clock: _Optional[_Union[Cursor, _Mapping]] = ..., api_enabled: _Optional[bool] = ..., sync_enabled: _Optional[bool] = ..., replicating_from: _Optional[_Iterable[int]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("peer_node_id", "peer", "state", "age_s", "idle_s", "envelopes")
    PEER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    peer_node_id: int
    peer: str
    state: str
    age_s: float
    idle_s: float
    envelopes: int
    def __init__(self, peer_node_id: _Optional[int] = ..., peer: _Optional[str] = ..., state: _Optional[str] = ..., age_s: _Optional[float] = ..., idle_s: _Optional[float] = ..., envelopes: _Optional[int] = ...) -> None: ...

class CallCount(_message.Message):
    __slots__ = ("method", "code", "count")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    method: str
    code: str
    count: int
    def __init__(self, method: _Optional[str] = ..., code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("node_id", "serving", "following", "calls", "subscribers_behind")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_BEHIND_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    serving: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    following: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    calls: _containers.RepeatedCompositeFieldContainer[CallCount]
    subscribers_behind: int
    def __init__(self, node_id: _Optional[int] = ..., serving: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ..., following: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ..., calls: _Optional[_Iterable[_Union[CallCount, _Mapping]]] = ..., subscribers_behind: _Optional[int] = ...) -> None: ...

class PayerReport(_message.Message):
    __slots__ = ("originator_node_id", "start_sequence_id", "end_sequence_id", "end_minute_since_epoch", "payers_hash", "node_ids", "payers", "fees")
    ORIGINATOR_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    END_SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    END_MINUTE_SINCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    PAYERS_HASH_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    PAYERS_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    originator_node_id: int
    start_sequence_id: int
    end_sequence_id: int
    end_minute_since_epoch: int
    payers_hash: bytes
    node_ids: _containers.RepeatedScalarFieldContainer[int]
    payers: _containers.RepeatedScalarFieldContainer[str]
    fees: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, originator_node_id: _Optional[int] = ..., start_sequence_id: _Optional[int] = ..., end_sequence_id: _Optional[int] = ..., end_minute_since_epoch: _Optional[int] = ..., payers_hash: _Optional[bytes] = ..., node_ids: _Optional[_Iterable[int]] = ..., payers: _Optional[_Iterable[str]] = ..., fees: _Optional[_Iterable[int]] = ...) -> None: ...

class AttestPayerReportRequest(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: PayerReport
    def __init__(self, report: _Optional[_Union[PayerReport, _Mapping]] = ...) -> None: ...

class AttestPayerReportResponse(_message.Message):
    __slots__ = ("verdict", "node_id", "signature", "reason")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    verdict: AttestationVerdict
    node_id: int
    signature: bytes
    reason: str
    def __init__(self, verdict: _Optional[_Union[AttestationVerdict, str]] = ..., node_id: _Optional[int] = ..., signature: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class PublishClientEnvelopesRequest(_message.Message):
    __slots__ = ("envelopes", "target_node_id")
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    TARGET_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[ClientEnvelope]
    target_node_id: int
    def __init__(self, envelopes: _Optional[_Iterable[_Union[ClientEnvelope, _Mapping]]] = ..., target_node_id: _Optional[int] = ...) -> None: ...

class PublishClientEnvelopesResponse(_message.Message):
    __slots__ = ("originator_envelopes",)
    ORIGINATOR_ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    originator_envelopes: _containers.RepeatedCompositeFieldContainer[OriginatorEnvelope]
    def __init__(self, originator_envelopes: _Optional[_Iterable[_Union[OriginatorEnvelope, _Mapping]]] = ...) -> None: ...

class GetGatewayHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetGatewayHealthResponse(_message.Message):
    __slots__ = ("serving", "payer_address", "version")
    SERVING_FIELD_NUMBER: _ClassVar[int]
    PAYER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    serving: bool
    payer_address: str
    version: str
    def __init__(self, serving: _Optional[bool] = ..., payer_address: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
