"""What an envelope costs: the RateRegistry's price, times this node's (mis)pricing factor.

One place for both sides of the payer pipeline: the originator charges with ``fees`` and a
peer attesting a report accepts an envelope's fees only if ``acceptable`` names them.

    pricing = Pricing(multiplier=1.0)
    base, congestion = pricing.fees(membership.rates_now(), size=120, retention_days=30)
"""

from __future__ import annotations

from dataclasses import dataclass

from refnode.chain import FREE, Rates

# An originator reads the RateRegistry on an interval, so it may price an envelope with the
# rates in force up to this long before the envelope's time. A peer accepts either.
RATES_GRACE_S = 30.0


@dataclass(frozen=True)
class Pricing:
    """``multiplier`` 1 prices by the registry; anything else misprices on purpose."""

    multiplier: float = 1.0

    def fees(self, rates: Rates, size: int, retention_days: int) -> tuple[int, int]:
        """(base fee, congestion fee) in picodollars for one envelope."""
        base = rates.base_fee(size, retention_days)
        if self.multiplier == 1.0:
            return base, rates.congestion_fee
        return int(base * self.multiplier), int(rates.congestion_fee * self.multiplier)

    def acceptable(self, schedule: list[Rates], unix_seconds: float, size: int,
                   retention_days: int, grace_s: float = RATES_GRACE_S) -> set[tuple[int, int]]:
        """Every (base, congestion) an honest originator could have charged at that time."""
        return {self.fees(r, size, retention_days)
                for r in rates_window(schedule, unix_seconds - grace_s, unix_seconds)}


def rates_window(schedule: list[Rates], start_s: float, end_s: float) -> list[Rates]:
    """The rates in force at some time in [start_s, end_s] (the schedule is start-ordered)."""
    schedule = schedule or [FREE]
    active = [schedule[0]]
    for rates in schedule[1:]:
        if rates.start_time <= start_s:
            active = [rates]
        elif rates.start_time <= end_s:
            active.append(rates)
    return active
