"""The node's view of the network: who is registered, who is canonical, and current prices."""

from __future__ import annotations

import asyncio
import logging
import time

from refnode.chain import FREE, ChainReader, NodeRecord, Rates, rates_at

log = logging.getLogger("refnode.membership")


class Signal:
    """Wakes every waiter when something changed; waiters never miss a change they asked about.

    Take ``current()`` before looking at the state, then ``await`` it: a change after the look
    has already set that event.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


class Membership:
    """Last good snapshot of the NodeRegistry and RateRegistry, refreshed in the background."""

    def __init__(self, reader: ChainReader, refresh_s: float):
        self.reader = reader
        self.refresh_s = refresh_s
        self.nodes: dict[int, NodeRecord] = {}
        self.schedule: list[Rates] = [FREE]
        self.changed = Signal()

    async def refresh(self) -> bool:
        """Read both registries once; False (and the old view kept) if the chain did not answer."""
        try:
            nodes, schedule = await asyncio.to_thread(self._read)
        except Exception as e:  # any RPC or decoding failure: keep serving the last view
            log.warning("chain read failed, keeping the last view: %s", e)
            return False
        if nodes != self.nodes or schedule != self.schedule:
            self.nodes, self.schedule = nodes, schedule
            self.changed.fire()
        return True

    def _read(self) -> tuple[dict[int, NodeRecord], list[Rates]]:
        return self.reader.read_nodes(), self.reader.read_rates()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()

    async def wait_until_readable(self, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while not await self.refresh():
            if time.monotonic() > end:
                raise RuntimeError(f"chain at {self.reader.w3.provider} did not answer "
                                   f"within {deadline_s:.0f}s")
            await asyncio.sleep(0.5)

    def canonical(self) -> dict[int, NodeRecord]:
        return {i: n for i, n in self.nodes.items() if n.is_canonical}

    def node_of_signer(self, address: str) -> NodeRecord | None:
        return next((n for n in self.nodes.values() if n.signer.lower() == address.lower()), None)

    def rates_now(self) -> Rates:
        return rates_at(self.schedule, time.time())
