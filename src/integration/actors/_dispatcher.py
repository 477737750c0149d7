"""The dispatcher: runs one asset actor per GUID it receives, with bounded concurrency.

A GUID already being driven is not started twice (never two actors on one asset); if it is sent again
meanwhile, it is driven once more after the running actor returns, so no wake-up is lost.

Producers (watcher, scheduler) never wait for a saturated dispatcher: :func:`offer_to_dispatcher` parks the
asset's wake-up in the store instead, and the scheduler hands it over when there is room. So a long ARS
outage that fills every actor slot does not stop the N-Drive intake or the sync polling.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
import trio

from integration.errors import StateConflict
from integration.state_machines import AssetState
from integration.store import Store

__all__ = ["offer_to_dispatcher", "run_dispatcher"]

log = structlog.get_logger()

_BUSY_RETRY_S = 1.0  # how soon a parked hand-over is tried again


async def offer_to_dispatcher(
    guid: str,
    *,
    state: AssetState,
    dispatch: trio.MemorySendChannel[str],
    store: Store,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Hand ``guid`` to the dispatcher without waiting; True if it took it.

    When the dispatcher's queue is full, the asset gets a wake-up time in the store (it must still be in
    ``state``) and False is returned; the scheduler then hands it over when it is due.
    """
    try:
        dispatch.send_nowait(guid)
    except trio.WouldBlock:
        with contextlib.suppress(StateConflict):  # it moved on meanwhile; whoever moved it owns its next step
            await store.update(guid, expected=state, next_wake=clock() + _BUSY_RETRY_S)
        return False
    return True


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
