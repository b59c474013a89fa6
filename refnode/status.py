"""What a node is doing right now, for GetStatus: the streams it serves and follows, and the
calls its API answered (by method and status).

Streams register themselves for as long as they live, so a stream left hanging shows here
with its age and idle time, and one that was closed is gone.

    status = NodeStatus(node_id=100)
    with status.stream("serving", peer_node_id=300, peer="ipv4:10.0.0.3:5050") as s:
        s.sent(500)
    status.count("PublishPayerEnvelopes", "OK")
    status.to_proto()
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from refnode.proto import refnode_pb2 as pb

KINDS = ("serving", "following")


@dataclass
class Stream:
    """One live stream; ``state`` and the counters change while it runs."""

    peer_node_id: int
    peer: str
    state: str
    opened: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    envelopes: int = 0

    def sent(self, envelopes: int) -> None:
        """A message went out (serving) or came in (following) with ``envelopes``."""
        self.envelopes += envelopes
        self.last = time.monotonic()

    def to_proto(self, now: float) -> pb.StreamStatus:
        return pb.StreamStatus(peer_node_id=self.peer_node_id, peer=self.peer, state=self.state,
                               age_s=round(now - self.opened, 3), idle_s=round(now - self.last, 3),
                               envelopes=self.envelopes)


class NodeStatus:
    def __init__(self, node_id: int):
        self.node_id = node_id
        self.calls: Counter[tuple[str, str]] = Counter()
        self._streams: dict[str, dict[int, Stream]] = {kind: {} for kind in KINDS}
        self._ids = itertools.count()

    @contextmanager
    def stream(self, kind: str, peer_node_id: int, peer: str, state: str = "connecting"
               ) -> Iterator[Stream]:
        """Register a stream of ``kind`` (serving or following) while the block runs."""
        key = next(self._ids)
        entry = Stream(peer_node_id, peer, state)
        self._streams[kind][key] = entry
        try:
            yield entry
        finally:
            del self._streams[kind][key]

    def streams(self, kind: str) -> list[Stream]:
        return list(self._streams[kind].values())

    def count(self, method: str, code: str) -> None:
        self.calls[(method, code)] += 1

    def to_proto(self) -> pb.GetStatusResponse:
        now = time.monotonic()
        return pb.GetStatusResponse(
            node_id=self.node_id,
            serving=[s.to_proto(now) for s in self.streams("serving")],
            following=[s.to_proto(now) for s in self.streams("following")],
            calls=[pb.CallCount(method=m, code=c, count=n)
                   for (m, c), n in sorted(self.calls.items())])
