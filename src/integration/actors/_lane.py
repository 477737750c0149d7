"""A lane: one external resource (ARS) that can pause and resume by itself.

When an infrastructure error says the resource is down, the lane pauses; assets that need it wait on
:meth:`Lane.wait_open` instead of failing one by one. :func:`run_lane_prober` asks the resource, at a
fixed interval from config, whether it is back, and reopens the lane when it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
import structlog
import trio

__all__ = ["Lane", "LaneStatistics", "run_lane_prober"]

log = structlog.get_logger()


class LaneStatistics(msgspec.Struct, frozen=True):
    """What a lane has been through."""

    name: str
    paused: bool
    reason: str
    pauses: int


class Lane:
    """A gate that is open unless the resource behind it is down."""

    def __init__(self, name: str, *, on_change: Callable[[bool, str], Awaitable[None]] | None = None) -> None:
        self.name = name
        self._open = trio.Event()
        self._open.set()
        self._paused_event = trio.Event()
        self.reason = ""
        self._pauses = 0
        self._on_change = on_change

    @property
    def paused(self) -> bool:
        """True while the resource is considered down."""
        return not self._open.is_set()

    async def pause(self, reason: str) -> None:
        """Close the gate (idempotent); the prober reopens it."""
        if self.paused:
            return
        self._open = trio.Event()
        self.reason = reason
        self._pauses += 1
        self._paused_event.set()
        log.warning("lane_paused", lane=self.name, reason=reason)
        if self._on_change is not None:
            await self._on_change(True, reason)

    async def resume(self) -> None:
        """Open the gate and wake everything waiting on it."""
        if not self.paused:
            return
        self.reason = ""
        self._paused_event = trio.Event()
        self._open.set()
        log.info("lane_resumed", lane=self.name)
        if self._on_change is not None:
            await self._on_change(False, "")

    async def wait_open(self) -> None:
        """Return at once while open; otherwise wait until the lane resumes."""
        await self._open.wait()

    async def wait_paused(self) -> None:
        """Wait until the lane pauses (used by the prober)."""
        await self._paused_event.wait()

    def statistics(self) -> LaneStatistics:
        """A frozen snapshot for status pages and tests."""
        return LaneStatistics(name=self.name, paused=self.paused, reason=self.reason, pauses=self._pauses)


async def run_lane_prober(
    *,
    lane: Lane,
    probe: Callable[[], Awaitable[bool]],
    interval_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: whenever ``lane`` pauses, call ``probe`` every ``interval_s`` until it answers True."""
    task_status.started()
    while True:
        await lane.wait_paused()
        while lane.paused:
            await trio.sleep(interval_s)
            if await probe():
                await lane.resume()
