"""The dispatcher: runs one asset actor per GUID it receives, with bounded concurrency.

A GUID already being driven is not started twice (never two actors on one asset); if it is sent again
meanwhile, it is driven once more after the running actor returns, so no wake-up is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

__all__ = ["run_dispatcher"]

log = structlog.get_logger()


async def run_dispatcher(
    *,
    receive: trio.MemoryReceiveChannel[str],
    drive: Callable[[str], Awaitable[None]],
    limiter: trio.CapacityLimiter,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: drive every received GUID, at most ``limiter.total_tokens`` at once."""
    running: set[str] = set()
    again: set[str] = set()

    async def run_one(guid: str) -> None:
        try:
            while True:
                again.discard(guid)
                try:
                    await drive(guid)
                except Exception:
                    log.exception("asset_actor_crashed", asset_guid=guid)
                if guid not in again:
                    return
        finally:
            running.discard(guid)
            limiter.release_on_behalf_of(guid)

    async with trio.open_nursery() as nursery:
        task_status.started()
        async for guid in receive:
            if guid in running:
                again.add(guid)
                continue
            await limiter.acquire_on_behalf_of(guid)
            running.add(guid)
            nursery.start_soon(run_one, guid)
