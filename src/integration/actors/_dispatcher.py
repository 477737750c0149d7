"""The dispatcher: runs one asset actor per GUID it is handed, with bounded concurrency.

A GUID already being driven is not started twice (never two actors on one asset); if it is handed over again
meanwhile, it is driven once more after the running actor returns, so no wake-up is lost.

Nobody who must not wait ever waits for it: :meth:`Dispatcher.wake` hands a GUID over if there is room and
otherwise parks it in the store as a wake-up due now, which the wake timer hands over as soon as there is
room. That is how the watcher, the sync poller, the lane prober and (next) HTTP callbacks wake the actor of
one asset without ever blocking on a saturated dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

from integration.actors._signal import Signal
from integration.store import Store

__all__ = ["Dispatcher", "DispatcherStatistics"]

import msgspec

log = structlog.get_logger()


class DispatcherStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """How busy the dispatcher is."""

    running: int
    queued: int
    capacity: int
    parked: int
    driven: int


class Dispatcher:
    """Hands GUIDs to asset actors; ``drive(guid)`` is the actor."""

    def __init__(
        self,
        *,
        store: Store,
        drive: Callable[[str], Awaitable[None]],
        limiter: trio.CapacityLimiter,
        queue_size: int,
        timer: Signal,
    ) -> None:
        self._store = store
        self._drive = drive
        self._limiter = limiter
        self._send, self._receive = trio.open_memory_channel[str](queue_size)
        self._timer = timer
        self._running: set[str] = set()
        self._again: set[str] = set()
        self.parked = 0
        self.driven = 0

    def offer(self, guid: str) -> bool:
        """Hand ``guid`` over if there is room now; False when the queue is full."""
        try:
            self._send.send_nowait(guid)
        except trio.WouldBlock:
            return False
        return True

    async def wake(self, guid: str, reason: str) -> None:
        """Hand ``guid`` over now, or park it as a wake-up due now (the wake timer hands it over)."""
        if self.offer(guid):
            return
        self.parked += 1
        await self._store.wakeups.wake_now(guid, reason=f"{reason} (waiting for a free actor)")
        self._timer.set()

    async def send(self, guid: str) -> None:
        """Hand ``guid`` over, waiting for room (only the wake timer may wait here)."""
        await self._send.send(guid)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run forever: drive every received GUID, at most ``limiter.total_tokens`` at once."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for guid in self._receive:
                if guid in self._running:
                    self._again.add(guid)
                    continue
                await self._limiter.acquire_on_behalf_of(guid)
                self._running.add(guid)
                nursery.start_soon(self._run_one, guid)

    def statistics(self) -> DispatcherStatistics:
        """A frozen snapshot."""
        return DispatcherStatistics(
            running=len(self._running),
            queued=self._receive.statistics().current_buffer_used,
            capacity=int(self._limiter.total_tokens),
            parked=self.parked,
            driven=self.driven,
        )

    async def _run_one(self, guid: str) -> None:
        try:
            while True:
                self._again.discard(guid)
                self.driven += 1
                try:
                    await self._drive(guid)
                except Exception:  # the actor handles its own errors; this is a bug, never a dead slot
                    log.exception("asset_actor_crashed", asset_guid=guid)
                if guid not in self._again:
                    return
        finally:
            self._running.discard(guid)
            self._limiter.release_on_behalf_of(guid)
