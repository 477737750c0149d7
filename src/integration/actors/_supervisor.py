"""The supervisor: one nursery with every actor of the daemon, each restarted with back-off if it crashes.

Start-up order: store (migrated) → ARS client → lane → dispatcher → scheduler → prober → watcher; then every
unfinished asset is handed to the dispatcher again (resume after a restart). Shutdown is cancellation: each
external side effect is bracketed by a persisted intent, so stopping at any point is safe, and the only
shielded work (a store transaction) is short.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import msgspec
import structlog
import trio

from integration.actors._asset_actor import DRIVABLE, AssetDeps, drive_asset
from integration.actors._dispatcher import run_dispatcher
from integration.actors._lane import Lane, run_lane_prober
from integration.actors._scheduler import Scheduler, run_scheduler
from integration.actors._watcher import WatcherStatistics, run_ndrive_watcher
from integration.adapters.ars import open_ars_client
from integration.config import Config
from integration.state_machines import AssetState
from integration.store import Store, open_store

__all__ = ["Daemon", "run_daemon", "supervise"]

log = structlog.get_logger()

_RESTART_INITIAL_S = 0.5
_RESTART_MAX_S = 30.0


class Daemon(msgspec.Struct, kw_only=True):
    """Handles on a running daemon, given to ``task_status.started`` (for the demo, tests and status)."""

    store: Store
    lane: Lane
    scheduler: Scheduler
    watcher: WatcherStatistics


async def supervise(name: str, actor: Callable[[], Awaitable[None]]) -> None:
    """Run ``actor`` forever; when it crashes, log it with context and restart it with capped back-off."""
    failures = 0
    while True:
        try:
            await actor()
            return
        except Exception:  # the single top-level catch: log with context, restart, never die silently
            failures += 1
            delay = min(_RESTART_MAX_S, _RESTART_INITIAL_S * math.pow(2, failures - 1))
            log.exception("actor_crashed", actor=name, restart_in_s=delay, failures=failures)
            await trio.sleep(delay)


async def run_daemon(
    config: Config,
    *,
    secret: str,
    transport: httpx.AsyncBaseTransport | None = None,
    task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the integration daemon until cancelled."""
    async with open_store(Path(config.storage.database)) as store:
        ars_limiter = trio.CapacityLimiter(config.concurrency.ars_connections)
        async with open_ars_client(
            config.ars, config.retry, secret=secret, transport=transport, limiter=ars_limiter
        ) as ars:

            async def persist_lane(paused: bool, reason: str) -> None:
                await store.set_lane("ars", paused=paused, reason=reason)

            lane = Lane("ars", on_change=persist_lane)
            scheduler = Scheduler()
            send, receive = trio.open_memory_channel[str](config.concurrency.assets * 4)
            deps = AssetDeps(store=store, ars=ars, lane=lane, config=config, kick_scheduler=scheduler.kick)
            watcher_stats = WatcherStatistics()
            copy_limiter = trio.CapacityLimiter(config.concurrency.copies)
            asset_limiter = trio.CapacityLimiter(config.concurrency.assets)

            async def drive(guid: str) -> None:
                await drive_asset(guid, deps)

            async def dispatch_and_resume() -> None:
                # Every (re)start of the dispatcher hands it the unfinished assets again: an actor that was
                # running when the dispatcher crashed must not be forgotten until the next daemon restart.
                async with trio.open_nursery() as inner:
                    await inner.start(
                        lambda task_status: run_dispatcher(
                            receive=receive.clone(), drive=drive, limiter=asset_limiter, task_status=task_status
                        )
                    )
                    inner.start_soon(_resume_unfinished, store, send.clone(), scheduler)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(supervise, "dispatcher", dispatch_and_resume)
                nursery.start_soon(
                    supervise,
                    "scheduler",
                    lambda: run_scheduler(deps=deps, scheduler=scheduler, dispatch=send.clone()),
                )
                nursery.start_soon(
                    supervise,
                    "ars-prober",
                    lambda: run_lane_prober(lane=lane, probe=ars.probe, interval_s=config.ars.probe_interval_s),
                )
                nursery.start_soon(
                    supervise,
                    "ndrive-watcher",
                    lambda: run_ndrive_watcher(
                        store=store,
                        config=config,
                        dispatch=send.clone(),
                        copy_limiter=copy_limiter,
                        kick_scheduler=scheduler.kick,
                        statistics=watcher_stats,
                    ),
                )
                log.info("daemon_started", ndrive=config.ndrive.root, workstations=config.ndrive.workstations)
                task_status.started(Daemon(store=store, lane=lane, scheduler=scheduler, watcher=watcher_stats))


async def _resume_unfinished(store: Store, send: trio.MemorySendChannel[str], scheduler: Scheduler) -> None:
    """Hand every asset that can move on to the dispatcher; make sure syncing ones have a wake-up."""
    drivable = await store.assets_in(DRIVABLE)
    syncing = await store.assets_in([AssetState.SYNCING])
    for record in syncing:
        if record.next_wake is None:
            await store.update(record.guid, expected=AssetState.SYNCING, next_wake=0.0)
    if drivable or syncing:
        log.info("resuming_unfinished_assets", drivable=len(drivable), syncing=len(syncing))
    scheduler.kick()
    for record in drivable:
        if record.next_wake is None:
            await send.send(record.guid)
