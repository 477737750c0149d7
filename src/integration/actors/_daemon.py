"""The daemon: one nursery with every actor, each supervised, over one store and one ARS client.

Start-up order: the daemon lock (one daemon per database) → store (migrated) → ARS client → the start-up
check of the ARS credentials and URL (refuse to start with an actionable message when they are wrong) →
lanes restored from the store → every unfinished asset given a wake-up → the actors. Shutdown is
cancellation: every external side effect is bracketed by a persisted intent, so stopping anywhere is safe,
and the only shielded work (a store transaction) is short.

The actors, one job each (docs/architecture.md):

=================  ===================================================================================
dispatcher         runs one asset actor per asset handed to it, bounded by ``concurrency.assets``
wake-timer         hands assets to the dispatcher when their wake-up is due (waiting for room)
sync-poller        asks ARS whether the ERDA sync of due ``syncing`` assets is done
lane-prober        probes paused lanes and held groups at a growing interval
ndrive-watcher     imports settled session folders
admin-requests     answers ``integration retry`` / ``ack`` while the daemon runs
heartbeat-writer   writes every actor's heartbeat for ``integration status``
=================  ===================================================================================
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Literal

import httpx
import msgspec
import structlog
import trio

from integration.actors._admin import run_admin_requests
from integration.actors._asset_actor import DRIVABLE, drive_asset
from integration.actors._deps import AssetDeps
from integration.actors._dispatcher import Dispatcher
from integration.actors._heartbeats import Heartbeats, run_heartbeat_writer
from integration.actors._lanes import HealthProbe, Lanes, run_lane_prober
from integration.actors._processing import PROCESSING_STATES
from integration.actors._processing_services import (
    JobCommand,
    Metrics,
    health_document,
    metrics_text,
    on_job_exit,
    prepare_local_credentials,
)
from integration.actors._signal import Signal
from integration.actors._supervisor import supervise
from integration.actors._sync_poller import SyncPollerStatistics, run_sync_poller
from integration.actors._wake_timer import WakeTimerStatistics, run_wake_timer
from integration.actors._watcher import WatcherStatistics, ndrive_health_probe, run_ndrive_watcher
from integration.adapters.ars import ArsClient, open_ars_client
from integration.adapters.executors import LocalExecutor
from integration.adapters.files import check_writable
from integration.api import ApiDeps, JobCallbacks, Tokens, build_api, listen, serve_api
from integration.config import Config
from integration.errors import ArsUnavailable, ConfigError, StorageUnavailable
from integration.state_machines import AssetState, Driver, states_driven_by
from integration.store import Store, StoreUnavailable, daemon_lock, open_store

__all__ = ["Daemon", "StartupCheck", "run_daemon"]

log = structlog.get_logger()

#: ``require``: refuse to start when ARS cannot be reached or refuses our credentials / URL;
#: ``offline_ok``: start with the ARS lane paused when ARS is unreachable (still refuse wrong credentials);
#: ``skip``: no check (tests that start ARS faults on purpose).
StartupCheck = Literal["require", "offline_ok", "skip"]


class Daemon(msgspec.Struct, kw_only=True):
    """Handles on a running daemon, given to ``task_status.started`` (for the demo, tests and status)."""

    store: Store
    ars: ArsClient
    lanes: Lanes
    dispatcher: Dispatcher
    heartbeats: Heartbeats
    watcher: WatcherStatistics
    poller: SyncPollerStatistics
    timer: WakeTimerStatistics
    executor: LocalExecutor | None  # None: [executor] kind = "none" (no processing)
    callbacks: JobCallbacks
    api_url: str  # where the HTTP API listens (callbacks, /health, /metrics)


async def run_daemon(
    config: Config,
    *,
    secret: str | Callable[[], str],
    transport: httpx.AsyncBaseTransport | None = None,
    startup_check: StartupCheck = "require",
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the integration daemon until cancelled.

    Raises :class:`~integration.errors.DaemonRunning` when another daemon holds the database, and the ARS
    start-up check's :class:`~integration.errors.InfrastructureError` when ARS refuses us (see
    :data:`StartupCheck`).
    """
    database = Path(config.storage.database)
    Tokens.from_files(config.api.token_files)  # unusable token files stop the start here, before anything is opened
    ars_secret = secret() if callable(secret) else secret
    with daemon_lock(database), closing(_listen(config)) as listener:
        async with open_store(database, clock=clock) as store:
            limiter = trio.CapacityLimiter(config.concurrency.ars_connections)
            async with open_ars_client(
                config.ars, config.retry, secret=secret, transport=transport, limiter=limiter
            ) as ars:
                await _run(
                    config,
                    store=store,
                    ars=ars,
                    startup_check=startup_check,
                    clock=clock,
                    task_status=task_status,
                    listener=listener,
                    ars_secret=ars_secret,
                )


async def _run(
    config: Config,
    *,
    store: Store,
    ars: ArsClient,
    startup_check: StartupCheck,
    clock: Callable[[], float],
    task_status: trio.TaskStatus[Daemon],
    listener: socket.socket,
    ars_secret: str,
) -> None:
    heartbeats = Heartbeats(clock=clock)
    timer_signal, poller_signal = Signal(), Signal()

    async def release(lane: str, reason: str) -> int:
        woken = await store.wakeups.release(lane, reason=reason)
        timer_signal.set()
        return woken

    lanes = Lanes(store=store, config=config.lanes, clock=clock, release=release)
    await lanes.restore()
    await _check_ars(ars, lanes, startup_check)
    # The N-Drive's blocking calls have threads of their own: calls abandoned on a hung mount keep theirs until
    # they return, so a hung mount uses up only these (and the intake probe then fails: the lane pauses).
    ndrive_limiter = trio.CapacityLimiter(config.concurrency.copies + 4)
    storage_limiter = trio.CapacityLimiter(2)
    health: dict[str, HealthProbe] = {
        "ars": ars.check,
        "intake": lambda: ndrive_health_probe(config, ndrive_limiter),
        "storage": lambda: storage_health_probe(config, storage_limiter),
    }
    work_root = config.processing.work_dir(config.storage.root)
    local_token, token_file, secret_file = prepare_local_credentials(config, ars_secret, work_root)
    api_url = config.api.public_url.rstrip("/") or f"http://{config.api.host}:{listener.getsockname()[1]}"
    job_exits_send, job_exits = trio.open_memory_channel[str](10_000)
    executor = (
        LocalExecutor(
            work_root / "jobs",
            parallel_jobs=config.executor.parallel_jobs,
            on_exit=on_job_exit(lambda guid: _offer(job_exits_send, guid)),
        )
        if config.executor.kind == "local"
        else None
    )
    deps = AssetDeps(
        store=store,
        ars=ars,
        lanes=lanes,
        config=config,
        wake_timer=timer_signal.set,
        wake_poller=poller_signal.set,
        health=health,
        clock=clock,
        executor=executor,
        job_spec=JobCommand(
            config=config,
            server=api_url,
            token_file=token_file,
            secret_file=secret_file,
            assets_root=work_root / "assets",
        ),
        started_at=clock(),
    )

    async def drive(guid: str) -> None:
        await drive_asset(guid, deps)

    dispatcher = Dispatcher(
        store=store,
        drive=drive,
        limiter=trio.CapacityLimiter(config.concurrency.assets),
        queue_size=config.concurrency.assets * 4,
        timer=timer_signal,
    )

    async def dispatch() -> None:
        # Every (re)start of the dispatcher gives the unfinished assets a wake-up again: an actor that was
        # running when the dispatcher crashed must not be forgotten until the next daemon restart.
        dispatched, polled, released = await store.wakeups.resume_all(
            # without processing, synced assets are at rest: not looked at again on each start
            drivable=DRIVABLE if executor is not None else DRIVABLE - {AssetState.SYNCED},
            polled=states_driven_by(Driver.SYNC_POLLER),
            paused_lanes=lanes.paused_names(),
            look_again=PROCESSING_STATES if executor is not None else PROCESSING_STATES - {AssetState.SYNCED},
        )
        if dispatched or polled or released:
            log.info("resuming_unfinished_assets", dispatch=dispatched, polls=polled, released=released)
        timer_signal.set()
        poller_signal.set()
        await dispatcher.run()

    callbacks = JobCallbacks(store=store, config=config, ars=ars, wake=dispatcher.wake)
    metrics = Metrics()
    api = build_api(
        ApiDeps(
            callbacks=callbacks,
            tokens=Tokens.from_files(config.api.token_files, extra={"local": local_token}),
            health=lambda: health_document(store=store, lanes=lanes, heartbeats=heartbeats, config=config),
            metrics=lambda: metrics_text(metrics, store=store, lanes=lanes, callbacks=callbacks),
            max_body_bytes=config.api.max_body_bytes,
        )
    )

    async def wake_after_job_exits() -> None:
        async for guid in job_exits:
            await dispatcher.wake(guid, "one of its jobs ended")

    stats = Daemon(
        store=store,
        ars=ars,
        lanes=lanes,
        dispatcher=dispatcher,
        heartbeats=heartbeats,
        watcher=WatcherStatistics(),
        poller=SyncPollerStatistics(),
        timer=WakeTimerStatistics(),
        executor=executor,
        callbacks=callbacks,
        api_url=api_url,
    )
    actors: dict[str, Callable[[], Awaitable[None]]] = {
        "dispatcher": dispatch,
        "wake-timer": lambda: run_wake_timer(
            store=store,
            dispatcher=dispatcher,
            signal=timer_signal,
            heartbeats=heartbeats,
            clock=clock,
            statistics=stats.timer,
        ),
        "sync-poller": lambda: run_sync_poller(
            deps=deps, dispatcher=dispatcher, signal=poller_signal, heartbeats=heartbeats, statistics=stats.poller
        ),
        "lane-prober": lambda: run_lane_prober(
            lanes=lanes, health=health, store=store, wake=dispatcher.wake, heartbeats=heartbeats, clock=clock
        ),
        "ndrive-watcher": lambda: run_ndrive_watcher(
            store=store,
            config=config,
            dispatcher=dispatcher,
            lanes=lanes,
            copy_limiter=trio.CapacityLimiter(config.concurrency.copies),
            ndrive_limiter=ndrive_limiter,
            heartbeats=heartbeats,
            health=health,
            statistics=stats.watcher,
        ),
        "admin-requests": lambda: run_admin_requests(
            store=store,
            ars=ars,
            wake=dispatcher.wake,
            wake_poller=poller_signal.set,
            heartbeats=heartbeats,
            interval_s=config.daemon.admin_poll_s,
        ),
        "heartbeat-writer": lambda: run_heartbeat_writer(
            store=store, heartbeats=heartbeats, interval_s=config.daemon.heartbeat_s
        ),
    }
    for name in actors:  # every actor is in the first heartbeat written, whichever starts first
        heartbeats.beat(name)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_when_the_store_ends, store)
        if executor is not None:
            await nursery.start(executor.run)
        nursery.start_soon(wake_after_job_exits)
        await nursery.start(serve_api, api, listener)
        for name, actor in actors.items():
            nursery.start_soon(
                partial(supervise, heartbeats=heartbeats, healthy_after_s=config.daemon.restart_healthy_after_s),
                name,
                actor,
            )
        log.info("daemon_started", ndrive=config.ndrive.root, workstations=config.ndrive.workstations, api=api_url)
        task_status.started(stats)


def _listen(config: Config) -> socket.socket:
    """The API's listening socket; a ConfigError saying what to change when the address cannot be had."""
    try:
        return listen(config.api.host, config.api.port)
    except OSError as exc:
        raise ConfigError(
            f"the API cannot listen on {config.api.host}:{config.api.port}: {exc.strerror or exc} (another program "
            "has the port? set [api] port)"
        ) from exc


def _offer(channel: trio.MemorySendChannel[str], guid: str) -> None:
    with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):  # full: the watchdog's look comes anyway
        channel.send_nowait(guid)


#: How often the daemon checks that its store still works.
STORE_CHECK_S = 1.0


async def _stop_when_the_store_ends(store: Store) -> None:
    """Stop the daemon when the store's database thread has ended (a failing disk, a damaged file).

    No actor can do anything without the store; restarting them would only crash-loop. The daemon stops with
    the cause, and the data manager starts it again once it is fixed (every side effect is intent-bracketed).
    """
    while (cause := store.ended) is None:  # noqa: ASYNC110 - the thread ends outside trio: looked at, not awaited
        await trio.sleep(STORE_CHECK_S)
    log.error("store_unavailable", cause=cause)
    raise StoreUnavailable(cause)


async def storage_health_probe(config: Config, limiter: trio.CapacityLimiter) -> None:
    """The storage lane's probe: a file can be written (and removed) in the storage root, in time."""
    root = Path(config.storage.root)
    try:
        with trio.fail_after(config.ndrive.io_timeout_s):
            await trio.to_thread.run_sync(check_writable, root, abandon_on_cancel=True, limiter=limiter)
    except trio.TooSlowError:
        raise StorageUnavailable(
            f"the local storage {root} did not answer within {config.ndrive.io_timeout_s:g} s: check the disk",
            path=str(root),
        ) from None


async def _check_ars(ars: ArsClient, lanes: Lanes, startup_check: StartupCheck) -> None:
    """The start-up check of ARS (see :data:`StartupCheck`)."""
    if startup_check == "skip":
        return
    try:
        await ars.check()
    except ArsUnavailable as exc:
        if startup_check == "require":
            raise
        await lanes.ars.pause(f"ARS was unreachable at start-up: {exc.reason}", probe="health", actor="daemon")
        return
    if lanes.ars.paused:
        await lanes.ars.resume("ARS answered the start-up check", actor="daemon")
