"""The toxiproxy API's records and validation: toxic specs, proxy input, API errors.

A leaf module (imports nothing of ours) so the HTTP layer, the proxies and the toxic stages
agree on one shape. Messages and status codes follow Shopify's toxiproxy, so clients written
for it (ours included) see the same errors from either server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"

# Attribute names and defaults per toxic type; every value is an integer, as in toxiproxy.
TOXIC_ATTRIBUTES: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}


class ApiError(Exception):
    """An API failure carrying toxiproxy's message and HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON error body toxiproxy sends: ``{"error": ..., "status": ...}``."""
        return {"error": self.message, "status": self.status}

    def wrap(self, detail: str) -> ApiError:
        """A copy with ``: detail`` appended, as toxiproxy joins a cause to its canned errors."""
        return ApiError(f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ApiError("bad request body", 400)
MISSING_FIELD = ApiError("missing required field", 400)
PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


@dataclass(frozen=True)
class Toxic:
    """One toxic as configured on a proxy; replaced (not mutated) when updated.

    The client returns these too, read from either server's JSON.
    """

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Toxic:
        """Build from the API's JSON object."""
        return cls(name=data["name"], type=data["type"],
                   stream=data.get("stream", DOWNSTREAM),
                   toxicity=float(data.get("toxicity", 1.0)),
                   attributes=dict(data.get("attributes") or {}))

    @property
    def direction(self) -> str:
        """``upstream`` (client to server) or ``downstream`` (server to client)."""
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        """The toxic as toxiproxy shows it."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _number(self.toxicity),
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class ProxyInput:
    """The fields of a proxy create, update or populate request."""

    name: str
    listen: str
    upstream: str
    enabled: bool


def decode_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body, or raise toxiproxy's 400 'bad request body'."""
    value = decode_json(body)
    if not isinstance(value, dict):
        raise BAD_REQUEST_BODY.wrap(f"expected a JSON object, got {type(value).__name__}")
    return value


def decode_json(body: bytes) -> Any:
    """Parse any JSON body; an empty body reads as EOF like Go's decoder reports it."""
    if not body.strip():
        raise BAD_REQUEST_BODY.wrap("EOF")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BAD_REQUEST_BODY.wrap(str(e)) from e


def parse_proxy(data: dict[str, Any], defaults: ProxyInput, where: str = "") -> ProxyInput:
    """Proxy fields from a request object, falling back to ``defaults`` for absent ones."""
    name = _typed(data, "name", str, defaults.name)
    listen = _typed(data, "listen", str, defaults.listen)
    upstream = _typed(data, "upstream", str, defaults.upstream)
    enabled = _typed(data, "enabled", bool, defaults.enabled)
    if not name:
        raise MISSING_FIELD.wrap("name" + where)
    if not upstream:
        raise MISSING_FIELD.wrap("upstream" + where)
    return ProxyInput(name, listen, upstream, enabled)


def parse_new_toxic(data: dict[str, Any]) -> Toxic:
    """A new toxic from a create request, with toxiproxy's defaults and checks in its order.

    Defaults: stream ``downstream``, toxicity 1.0, name ``<type>_<stream>``.
    The caller checks the name against existing toxics (409) before keeping it.
    """
    stream = _typed(data, "stream", str, DOWNSTREAM)
    kind = _typed(data, "type", str, "")
    toxicity = _toxicity(data, 1.0)
    name = _typed(data, "name", str, "") or f"{kind}_{stream}"
    if stream.lower() not in (UPSTREAM, DOWNSTREAM):
        raise INVALID_STREAM
    if kind not in TOXIC_ATTRIBUTES:
        raise INVALID_TOXIC_TYPE
    return Toxic(name, kind, stream, toxicity, dict(TOXIC_ATTRIBUTES[kind]))


def with_attributes(toxic: Toxic, data: dict[str, Any]) -> Toxic:
    """The toxic with the request's ``attributes`` merged in; unknown keys are ignored."""
    raw = data.get("attributes")
    if raw is None:
        return toxic
    if not isinstance(raw, dict):
        raise BAD_REQUEST_BODY.wrap("attributes must be a JSON object")
    merged = dict(toxic.attributes)
    for key in TOXIC_ATTRIBUTES[toxic.type]:
        if key in raw:
            merged[key] = _integer(raw[key], f"{toxic.type}.{key}")
    return Toxic(toxic.name, toxic.type, toxic.stream, toxic.toxicity, merged)


def updated_toxic(toxic: Toxic, data: dict[str, Any]) -> Toxic:
    """The toxic after an update request: new attributes and toxicity; name, type, stream stay."""
    merged = with_attributes(toxic, data)
    toxicity = _toxicity(data, toxic.toxicity)
    return Toxic(merged.name, merged.type, merged.stream, toxicity, merged.attributes)


def _typed(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {_json_kind(value)} into field {key} of type {kind.__name__}"
        )
    return value


def _toxicity(data: dict[str, Any], default: float) -> float:
    value = data.get("toxicity", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {_json_kind(value)} into field toxicity of type float32"
        )
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {_json_kind(value)} into field {where} of type int64"
        )
    if isinstance(value, float):
        if not value.is_integer():
            raise BAD_REQUEST_BODY.wrap(
                f"json: cannot unmarshal number {value} into field {where} of type int64"
            )
        return int(value)
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
