"""Invalid-envelope fuzzing: Hypothesis draws malformed and adversarial publish requests, an
agent sends each to one node over real gRPC, and the history keeps what came back.

Each ``Case`` is a kind and the parameters Hypothesis drew for it; ``build`` turns it into
the request's bytes (with the payload digests it carries), and ``EXPECTED`` says which gRPC
status a correct node answers. Bytes too large for Hypothesis to draw (oversized envelopes
and requests, huge batches) are drawn as sizes and made here.

    FuzzAgent(target="node-100", max_cases=200, rate=15, duration_s=18)
    FuzzRejected(min_cases=100)     # every case refused as EXPECTED, none of it stored
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import grpc
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from refnode.admission import MAX_CLIENT_ENVELOPE, MAX_PUBLISH, MAX_REQUEST, MAX_RETENTION_DAYS
from refnode.envelopes import SECP256K1_HALF_N, Signer, client_envelope, sign_payer_envelope
from refnode.proto import refnode_pb2 as pb
from shakedown.client import NodeClient
from shakedown.keys import node_signer, payer
from shakedown.scenarios.agents import Agent, AgentContext, record_publish
from shakedown.scenarios.expectations import Check, Expectation
from shakedown.scenarios.probe import payload_digest
from shakedown.scenarios.view import RunView

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 order
PUBLISH = "/refnode.v1.ReplicationApi/PublishPayerEnvelopes"
EXPECTED: dict[str, tuple[str, ...]] = {
    "bad-signature": ("INVALID_ARGUMENT",),
    "wrong-target": ("INVALID_ARGUMENT",),
    "truncated-request": ("INVALID_ARGUMENT",),  # the request does not parse
    "truncated-envelope": ("INVALID_ARGUMENT",),
    "oversized-envelope": ("INVALID_ARGUMENT",),
    "oversized-request": ("RESOURCE_EXHAUSTED",),  # beyond the node's receive limit
    "wrong-payer": ("PERMISSION_DENIED",),
    "replayed": ("ALREADY_EXISTS",),
    "replayed-in-batch": ("ALREADY_EXISTS",),
    "huge-batch": ("INVALID_ARGUMENT",),
    "empty-batch": ("INVALID_ARGUMENT",),
    "no-topic": ("INVALID_ARGUMENT",),
    "bad-retention": ("INVALID_ARGUMENT",),
    "garbage": ("INVALID_ARGUMENT",),  # does not parse, or parses as nonsense
}
PAYER = Signer(bytes(payer(5).key))


@dataclass(frozen=True)
class Case:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def _case(kind: str, **params: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    return st.fixed_dictionaries(params).map(lambda p: Case(kind, p))


def bad_signatures() -> st.SearchStrategy[bytes]:
    """Signatures no payer key can have made: every one fails before or at recovery."""
    word = st.integers(1, N - 1)
    low = st.integers(1, SECP256K1_HALF_N)
    v = st.integers(0, 1)

    def sig(r: int, s: int, v_: int) -> bytes:
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v_])
    return st.one_of(
        st.binary(max_size=200).filter(lambda b: len(b) != 65),            # wrong length
        st.builds(lambda r, s, v_: sig(r, s, v_), word, low, st.integers(2, 255)),  # bad v
        st.builds(sig, word, st.integers(SECP256K1_HALF_N + 1, N - 1), v),  # high s
        st.builds(lambda s, v_: sig(0, s, v_), low, v),                    # r = 0
        st.builds(lambda r, v_: sig(r, 0, v_), word, v),                   # s = 0
        st.builds(sig, st.integers(N, 2**256 - 1), low, v))                # r >= n


def cases() -> st.SearchStrategy[Case]:
    """Every kind of bad request, with what Hypothesis draws for it."""
    payload = st.binary(min_size=2, max_size=256)
    prefix = st.integers(0, 3)  # valid envelopes before the bad one: the whole batch is refused
    return st.one_of(
        _case("bad-signature", signature=bad_signatures(), payload=payload, prefix=prefix),
        _case("wrong-target", target=st.integers(0, 2**32 - 1), payload=payload),
        _case("truncated-request", cut=st.integers(0, 10**6), payload=payload),
        _case("truncated-envelope", cut=st.integers(0, 10**6), payload=payload, prefix=prefix),
        _case("oversized-envelope", extra=st.integers(1, 4096)),
        _case("oversized-request", extra=st.integers(1, 65536)),
        _case("wrong-payer", node=st.integers(0, 99), payload=payload),
        _case("replayed", pick=st.integers(0, 10**6)),
        _case("replayed-in-batch", fresh=st.integers(0, 3), payload=payload),
        _case("huge-batch", extra=st.integers(1, 100)),
        _case("empty-batch"),
        _case("no-topic", payload=payload),
        _case("bad-retention", retention=st.one_of(st.just(0), st.integers(
            MAX_RETENTION_DAYS + 1, 2**32 - 1)), payload=payload),
        _case("garbage", raw=st.binary(min_size=1, max_size=512)))


@dataclass
class Built:
    """A case as bytes on the wire, with the payloads it carries."""

    request: bytes
    payloads: list[str]                                  # must not be stored
    replays: list[str] = field(default_factory=list)     # stored once already, not again


def _request(envs: list[pb.PayerEnvelope]) -> bytes:
    return pb.PublishPayerEnvelopesRequest(payer_envelopes=envs).SerializeToString()


def _fresh(node_id: int, payload: bytes, key: Signer = PAYER) -> pb.PayerEnvelope:
    return sign_payer_envelope(key, client_envelope(b"topic/fuzz", payload), node_id)


def _digests(envs: list[pb.PayerEnvelope]) -> list[str]:
    return [payload_digest(e.unsigned_client_envelope) for e in envs]


def build(case: Case, node_id: int, originals: list[pb.PayerEnvelope],
          node_keys: list[Signer]) -> Built:
    """The bytes of ``case`` aimed at ``node_id``; ``originals`` were stored by it already;
    ``node_keys`` are the registered nodes' signers."""
    p = case.params
    valid = [_fresh(node_id, os.urandom(24)) for _ in range(p.get("prefix", 0))]
    k = case.kind
    if k == "bad-signature":
        bad = _fresh(node_id, p["payload"])
        bad.payer_signature = p["signature"]
        envs = [*valid, bad]
    elif k == "wrong-target":
        target = p["target"] if p["target"] != node_id else node_id + 1
        envs = [sign_payer_envelope(PAYER, client_envelope(b"topic/fuzz", p["payload"]), target)]
    elif k == "truncated-request":
        inner = _fresh(node_id, p["payload"]).SerializeToString()
        head = b"\x0a" + _varint(len(inner))  # field 1, length-delimited: the first envelope
        return Built(head + inner[:p["cut"] % len(inner)], [])  # cut inside it
    elif k == "truncated-envelope":
        body = client_envelope(b"topic/fuzz", p["payload"])
        cut = len(body) - 1 - p["cut"] % (len(p["payload"]) - 1)  # inside the payload field
        envs = [*valid, sign_payer_envelope(PAYER, body[:cut], node_id)]
        return Built(_request(envs), _digests(envs))
    elif k == "oversized-envelope":
        envs = [_fresh(node_id, os.urandom(MAX_CLIENT_ENVELOPE + p["extra"]))]
    elif k == "oversized-request":
        chunk = MAX_CLIENT_ENVELOPE - 256
        envs = [_fresh(node_id, os.urandom(chunk)) for _ in range(MAX_REQUEST // chunk + 1)]
        envs.append(_fresh(node_id, os.urandom(p["extra"])))
    elif k == "wrong-payer":
        envs = [_fresh(node_id, p["payload"], node_keys[p["node"] % len(node_keys)])]
    elif k == "replayed":
        again = originals[p["pick"] % len(originals)]
        return Built(_request([again]), [], _digests([again]))
    elif k == "replayed-in-batch":
        twice = _fresh(node_id, p["payload"])
        others = [_fresh(node_id, os.urandom(24)) for _ in range(p["fresh"])]
        envs = [twice, *others, twice]
    elif k == "huge-batch":
        junk = pb.PayerEnvelope(unsigned_client_envelope=b"\x0a\x01t", payer_signature=b"\x00",
                                target_originator=node_id, message_retention_days=30)
        return Built(_request([junk] * (MAX_PUBLISH + p["extra"])), [])
    elif k == "empty-batch":
        return Built(_request([]), [])
    elif k == "no-topic":
        body = pb.ClientEnvelope(payload=p["payload"]).SerializeToString()
        envs = [sign_payer_envelope(PAYER, body, node_id)]
    elif k == "bad-retention":
        envs = [sign_payer_envelope(PAYER, client_envelope(b"topic/fuzz", p["payload"]),
                                    node_id, p["retention"])]
    elif k == "garbage":
        return Built(p["raw"], [])
    else:
        raise ValueError(f"unknown fuzz case {k!r}")
    return Built(_request(envs), _digests(envs))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@dataclass(frozen=True)
class FuzzAgent(Agent):
    """Send up to ``max_cases`` drawn cases to ``target`` at ``rate`` per second (bounded in
    count and time), after publishing ``originals`` valid envelopes for the replays."""

    target: str = "node-100"
    max_cases: int = 200
    rate: float = 15.0
    originals: int = 5
    label: str = "fuzz"

    def run(self, ctx: AgentContext) -> None:
        if not ctx.sleep_until(self.start_s):
            return
        node = ctx.node(self.target)
        endpoint, node_id = node["grpc"], int(node["node_id"])
        with NodeClient(endpoint) as client:
            originals = [_fresh(node_id, os.urandom(24)) for _ in range(self.originals)]
            if record_publish(ctx.history, f"{self.label}-originals", self.target, node_id,
                              originals, client.publish) is None:
                raise RuntimeError(f"{self.target} did not take the originals to replay")
        node_keys = [Signer(bytes(node_signer(i).key)) for i in range(len(ctx.record["nodes"]))]
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
        with grpc.insecure_channel(endpoint, options=options) as channel:
            send = channel.unary_unary(PUBLISH)
            interval, start = 1.0 / self.rate, time.monotonic()
            sent = [0]

            @settings(max_examples=self.max_cases, database=None, deadline=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @seed(ctx.seed())
            @given(cases())
            def one(case: Case) -> None:
                if not ctx.until(self.end_s):
                    return
                ctx.stop.wait(max(0.0, start + sent[0] * interval - time.monotonic()))
                sent[0] += 1
                self._send(ctx, send, case, node_id, originals, node_keys)

            one()

    def _send(self, ctx: AgentContext, send: Any, case: Case, node_id: int,
              originals: list[pb.PayerEnvelope], node_keys: list[Signer]) -> None:
        built = build(case, node_id, originals, node_keys)
        try:
            send(built.request, timeout=30)
            got, detail = "OK", ""
        except grpc.RpcError as e:
            got = e.code().name if isinstance(e, grpc.Call) else type(e).__name__
            detail = (e.details() if isinstance(e, grpc.Call) else str(e)) or ""
        ctx.history.info("fuzz", label=self.label, target=self.target, kind=case.kind,
                         expected=list(EXPECTED[case.kind]), got=got, detail=detail[:160],
                         bytes=len(built.request), payloads=built.payloads,
                         replays=built.replays)


@dataclass(frozen=True)
class FuzzRejected(Expectation):
    """At least ``min_cases`` fuzz cases of ``label`` were sent, every kind among them, while
    the node acknowledged publishes; each was refused with its expected status; none of what
    they carried is stored on any node (and a replayed envelope is stored exactly once)."""

    label: str = "fuzz"
    min_cases: int = 100

    @property
    def name(self) -> str:
        return f"fuzz-rejected({self.label})"

    def check(self, view: RunView) -> Check:
        done = [e for e in view.events_of("fuzz") if e.get("label") == self.label]
        per_kind = Counter(e["kind"] for e in done)
        answers = {k: dict(Counter(e["got"] for e in done if e["kind"] == k)) for k in per_kind}
        view.metrics["fuzz"] = {"cases": len(done), "answers": answers}
        details = {"cases": len(done), "answers": answers}
        if len(done) < self.min_cases:
            return self.failed(f"only {len(done)} fuzz cases sent (wanted >= "
                               f"{self.min_cases})", **details)
        missing = sorted(set(EXPECTED) - set(per_kind))
        if missing:
            return self.failed(f"no case of {', '.join(missing)} was drawn", **details)
        first, last = done[0]["t"] - view.t0, done[-1]["t"] - view.t0
        served = sum(view.acks_between(first, last).values())
        details["acked_during"] = served
        if not served:
            return self.failed(f"no publish was acknowledged while the {len(done)} cases were "
                               "sent: the node did not keep serving", **details)
        wrong: dict[str, Counter[str]] = defaultdict(Counter)
        for e in done:
            if e["got"] not in e["expected"]:
                wrong[e["kind"]][e["got"]] += 1
        problems = [f"{k}: {sum(c.values())} of {per_kind[k]} answered "
                    f"{', '.join(f'{g} x{n}' for g, n in c.most_common())} (wanted "
                    f"{' or '.join(EXPECTED[k])})" for k, c in sorted(wrong.items())]
        problems += self._stored(view, done)
        if problems:
            return self.failed("; ".join(problems[:3]), **details)
        return self.passed(f"{len(done)} cases of {len(per_kind)} kinds, each refused as "
                           f"expected; none stored", **details)

    def _stored(self, view: RunView, done: list[dict[str, Any]]) -> list[str]:
        refused = {p: e["kind"] for e in done for p in e.get("payloads", [])}
        replayed = {p for e in done for p in e.get("replays", [])}
        problems = []
        for node, store in sorted(view.stores.items()):
            held = Counter(payload for _, payload in store.values())
            leaked = sorted({refused[p] for p in held if p in refused})
            if leaked:
                n = sum(1 for p in held if p in refused)
                problems.append(f"{node} stored {n} envelope(s) of refused cases "
                                f"({', '.join(leaked)})")
            twice = [p for p in replayed if held.get(p, 0) > 1]
            if twice:
                problems.append(f"{node} stored {len(twice)} replayed envelope(s) twice")
        return problems
