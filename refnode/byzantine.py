"""A byzantine originator on purpose (REFNODE_BYZANTINE): what a rogue node serves its peers.

Its replication streams are honest until the subscriber has caught up with its own
envelopes; then, in turn, one of the configured misbehaviours, made of envelopes it really
signs with its registered key (valid-looking, bad data):

- ``equivocate``: two different envelopes under the next sequence id, in one message;
- ``gap``: an envelope two sequence ids ahead, skipping one;
- ``stale``: its last envelopes again, ``STALE_BURSTS`` messages as fast as the stream takes.

Everything else about the node (its API, its storage, its replication from others) stays
honest, so what its peers do with its streams is all that differs.

    rogue = Byzantine(300, signer, store, ("equivocate", "gap", "stale"))
    for message in await rogue.lies(top=clock[300]): yield message
"""

from __future__ import annotations

from collections.abc import Sequence

from refnode.config import BYZANTINE_MODES as MODES
from refnode.envelopes import Signer, sign_originator_envelope
from refnode.proto import refnode_pb2 as pb
from refnode.store import Store

STALE_BURSTS = 20  # messages per stale flood
STALE_PAGE = 50    # envelopes per stale message


class Byzantine:
    def __init__(self, node_id: int, signer: Signer, store: Store, modes: Sequence[str]):
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ValueError(f"byzantine modes {list(modes)}: use some of {', '.join(MODES)}")
        self.node_id, self.signer, self.store, self.modes = node_id, signer, store, tuple(modes)
        self._turn = 0

    async def lies(self, top: int) -> list[pb.SubscribeEnvelopesResponse]:
        """The next misbehaviour, for a subscriber that holds this node's envelopes up to
        ``top``; nothing before the node has an envelope of its own to forge from."""
        if top < 1:
            return []
        mode = self.modes[self._turn % len(self.modes)]
        self._turn += 1
        blobs = await self.store.read_after(self.node_id, max(0, top - STALE_PAGE), STALE_PAGE)
        if not blobs:
            return []
        recent = [pb.OriginatorEnvelope.FromString(b) for b in blobs]
        if mode == "stale":
            return [pb.SubscribeEnvelopesResponse(envelopes=recent)] * STALE_BURSTS
        if mode == "gap":
            return [pb.SubscribeEnvelopesResponse(envelopes=[self._forge(recent[-1], top + 2)])]
        twins = [self._forge(recent[-1], top + 1, shift_ns=k) for k in (1, 2)]
        return [pb.SubscribeEnvelopesResponse(envelopes=twins)]

    def _forge(self, original: pb.OriginatorEnvelope, sequence_id: int,
               shift_ns: int = 0) -> pb.OriginatorEnvelope:
        """A copy of ``original`` re-sequenced (and re-timed by ``shift_ns``), signed anew."""
        unsigned = pb.UnsignedOriginatorEnvelope.FromString(original.unsigned_originator_envelope)
        unsigned.originator_sequence_id = sequence_id
        unsigned.originator_ns += shift_ns
        return sign_originator_envelope(self.signer, unsigned)
