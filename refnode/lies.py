"""A lying reporter on purpose (REFNODE_LIE_IN_REPORTS): payer reports that disagree with the
envelopes they cover, one lie per report, in turn:

- ``fee``: one payer is charged ``EXTRA_FEE`` picodollars more than its envelopes cost;
- ``range``: the report ends ``SHIFT`` envelopes early but keeps the fees and end minute of
  the whole range (the next report then charges those envelopes again);
- ``payers``: the first payer's fees are put on another payer: the total is right, the
  payers hash is not.

The liar vouches for its own report and settles with the payer list it claimed; only its
peers' judgement stands between the lie and the chain.

    liar = Liar(("fee", "range", "payers"))
    end, fees = liar.lie(start=0, end=40, fees={"0xA..": 900, "0xB..": 300})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from refnode.config import LIES

EXTRA_FEE = 1_000
SHIFT = 3
SCAPEGOAT = "0x000000000000000000000000000000000000dEaD"  # when a range has one payer only


class Liar:
    def __init__(self, kinds: Sequence[str]):
        unknown = [k for k in kinds if k not in LIES]
        if unknown or not kinds:
            raise ValueError(f"lies {list(kinds)}: use some of {', '.join(LIES)}")
        self.kinds = tuple(kinds)
        self._turn = 0

    def next_kind(self, start: int, end: int) -> str:
        kind = self.kinds[self._turn % len(self.kinds)]
        self._turn += 1
        if kind == "range" and end - start <= SHIFT:
            return "fee"  # too short to shift: lie about the fee instead
        return kind

    def lie(self, kind: str, start: int, end: int,
            fees: Mapping[str, int]) -> tuple[int, dict[str, int]]:
        """(the end the report claims, the fees it claims) for the honest ``(start, end]``."""
        claimed = dict(fees)
        payers = sorted(claimed, key=lambda a: int(a, 16))
        if kind == "range":
            return end - SHIFT, claimed
        if kind == "payers":
            victim = payers[1] if len(payers) > 1 else SCAPEGOAT
            claimed[victim] = claimed.get(victim, 0) + claimed.pop(payers[0])
            return end, claimed
        claimed[payers[0]] += EXTRA_FEE
        return end, claimed
