"""Bounded work lanes: CPU-bound work runs on a few threads, and a full lane refuses new work at once.

Generation and lookups are separate lanes, so a request answered from the cache never waits behind a
generation. Refusing (429 with Retry-After) instead of queueing without end keeps memory and latency bounded
under any load. A lane may give each caller a share (at most so many of its jobs waiting or running), so one
caller cannot fill it; a job whose client hangs up before it starts is dropped, never run.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class LaneFull(Exception):
    """The lane is full (`share` None), or the caller already has `share` jobs in it."""

    def __init__(self, lane: str, retry_after_s: int, share: int | None = None) -> None:
        super().__init__(f"the {lane} queue is full")
        self.lane = lane
        self.retry_after_s = retry_after_s
        self.share = share


class ClientGone(Exception):
    """The client hung up while its job waited: the job was dropped without running."""


@dataclass(frozen=True)
class Caller:
    """Whom a job is for: `id` counts against a lane's per-caller share; `gone`, when given, returns once the
    client has hung up (a job still waiting then is dropped)."""

    id: str = ""
    gone: Callable[[], Awaitable[None]] | None = None


ANYONE = Caller()


class WorkLane:
    """`workers` threads, at most `max_waiting` jobs waiting beyond the running ones, and at most `per_caller`
    jobs (waiting or running) of any one caller (None: no share)."""

    def __init__(self, name: str, *, workers: int, max_waiting: int, per_caller: int | None = None) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + max_waiting
        self.per_caller = per_caller
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after a shutdown
        self._lock = threading.Lock()
        self._in_lane = 0  # waiting + running
        self._by_caller: dict[str, int] = {}  # caller id -> its jobs waiting + running (no entry at 0)
        self._mean_s = 1.0  # moving average of a job's duration, for Retry-After

    @property
    def depth(self) -> int:
        return self._in_lane

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the jobs ahead, spread over the workers."""
        return max(1, math.ceil(self._in_lane * self._mean_s / self.workers))

    async def run(self, job: Callable[[], T], caller: Caller = ANYONE) -> T:
        return await (await self.start(job, caller))

    async def start(self, job: Callable[[], T], caller: Caller = ANYONE) -> asyncio.Future[T]:
        """Queue `job` and return once it runs (a streamed answer then passes on what it produces), with the
        future of its result. LaneFull when there is no room; ClientGone when the caller hung up first."""
        with self._lock:
            if self._in_lane >= self.capacity:
                raise LaneFull(self.name, self.retry_after())
            held = self._by_caller.get(caller.id, 0)
            if self.per_caller is not None and held >= self.per_caller:
                raise LaneFull(self.name, self.retry_after(), share=self.per_caller)
            self._in_lane += 1
            self._by_caller[caller.id] = held + 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                                    thread_name_prefix=f"adaptlab-{self.name}")
            executor = self._executor
        loop = asyncio.get_running_loop()
        began: asyncio.Future[None] = loop.create_future()

        def mark_began() -> None:
            if not began.done():
                began.set_result(None)

        def started_job() -> T:
            loop.call_soon_threadsafe(mark_began)
            return self._timed(job)

        future = executor.submit(started_job)
        # Released when the job ends or is cancelled before it starts — not when the caller stops waiting
        # (a client that hangs up does not free a thread that is still generating).
        future.add_done_callback(lambda _: self._release(caller.id))
        result = asyncio.wrap_future(future)
        watcher = asyncio.ensure_future(caller.gone()) if caller.gone is not None else None
        waiting: list[asyncio.Future[Any]] = [began, result, *([watcher] if watcher else [])]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            result.cancel()  # as awaiting `result` itself would: a job not yet started is dropped
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if not began.done() and not result.done() and future.cancel():  # cancel() fails once the job runs
            raise ClientGone(self.name)
        return result

    def _release(self, caller_id: str) -> None:
        with self._lock:
            self._in_lane -= 1
            held = self._by_caller.pop(caller_id) - 1
            if held:
                self._by_caller[caller_id] = held

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
