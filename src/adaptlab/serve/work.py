"""Bounded work lanes: CPU-bound work runs on a few threads, and a full lane refuses new work at once.

Generation and lookups are separate lanes, so a request answered from the cache never waits behind a
generation. Refusing (429 with Retry-After) instead of queueing without end keeps memory and latency bounded
under any load.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class LaneFull(Exception):
    def __init__(self, lane: str, retry_after_s: int) -> None:
        super().__init__(f"the {lane} queue is full")
        self.lane = lane
        self.retry_after_s = retry_after_s


class WorkLane:
    """`workers` threads, at most `max_waiting` jobs waiting beyond the running ones."""

    def __init__(self, name: str, *, workers: int, max_waiting: int) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + max_waiting
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after a shutdown
        self._lock = threading.Lock()
        self._in_lane = 0  # waiting + running
        self._mean_s = 1.0  # moving average of a job's duration, for Retry-After

    @property
    def depth(self) -> int:
        return self._in_lane

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the jobs ahead, spread over the workers."""
        return max(1, math.ceil(self._in_lane * self._mean_s / self.workers))

    async def run(self, job: Callable[[], T]) -> T:
        with self._lock:
            if self._in_lane >= self.capacity:
                raise LaneFull(self.name, self.retry_after())
            self._in_lane += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                                    thread_name_prefix=f"adaptlab-{self.name}")
            executor = self._executor
        future = executor.submit(self._timed, job)
        # Released when the job ends or is cancelled before it starts — not when the caller stops waiting
        # (a client that hangs up does not free a thread that is still generating).
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future) -> None:
        with self._lock:
            self._in_lane -= 1

    def _timed(self, job: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return job()
        finally:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - started)

    def shutdown(self) -> None:
        """Finish the running jobs, drop the waiting ones (the server is stopping)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
