"""Per-model limits: at most N calls in flight, and optional requests- and tokens-per-minute budgets."""
from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Refills `per_minute / 60` units a second up to `capacity`; `take` waits until the units are there.

    A request larger than the capacity waits for a full bucket and then drives it negative, so it is neither
    refused nor allowed to starve the next ones.
    """

    def __init__(self, per_minute: float, capacity: float | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, per_minute / 6.0)  # 10 s worth
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, units: float) -> None:
        async with self._lock:  # first come, first served
            need = min(units, self.capacity)
            while True:
                self._refill()
                if self.level >= need:
                    self.level -= units
                    return
                await asyncio.sleep((need - self.level) / self.rate)

    def adjust(self, units: float) -> None:
        """Charge (or give back) the difference between an estimate and what a call really used."""
        self._refill()
        self.level = min(self.capacity, self.level - units)


class Limiter:
    def __init__(self, max_concurrency: int, rpm: int | None, tpm: int | None) -> None:
        self.slots = asyncio.Semaphore(max(1, max_concurrency))
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    async def acquire(self, est_tokens: int) -> None:
        if self.rpm is not None:
            await self.rpm.take(1)
        if self.tpm is not None:
            await self.tpm.take(est_tokens)
        await self.slots.acquire()

    def release(self) -> None:
        self.slots.release()
