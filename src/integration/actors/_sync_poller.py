"""The sync poller: asks ARS, in batches, whether the ERDA sync of the due ``syncing`` assets is done.

It sleeps until the earliest ``sync_poll`` wake-up (an indexed MIN) or until signalled, and takes only the due
rows. One ``GET /assets/inprogress`` covers a batch (ARS lists every asset still syncing or with an open share);
an asset absent from it is usually done, so its file list is read directly. ``synced`` is recorded only when
ARS holds every uploaded file SYNCHRONIZED with the CRC-32 taken at intake.

Failures stay where they belong: ARS unreachable (or any site error) pauses the ARS lane and the poller
waits for it to reopen — it never crashes; one asset's failed check reschedules that asset only. Each
asset is settled in its own task that handles its own errors, so no exception group escapes.
"""

from __future__ import annotations

import contextlib
import math

import structlog
import trio

from integration.actors._ars_verify import check_in_erda
from integration.actors._asset_actor import fail_asset
from integration.actors._deps import AssetDeps
from integration.actors._dispatcher import Dispatcher
from integration.actors._heartbeats import Heartbeats
from integration.actors._signal import Signal
from integration.adapters.ars import AssetStatus
from integration.errors import InfrastructureError, IntegrationError, StateConflict
from integration.state_machines import AssetState, AssetTrigger
from integration.store import AssetRecord, Wake

__all__ = ["POLLER", "SyncPollerStatistics", "run_sync_poller"]

import msgspec

log = structlog.get_logger()

POLLER = "sync-poller"
_BATCH_THRESHOLD = 4  # from this many due syncing assets on, one in-progress listing beats N status calls
_BATCH = 500
_CRASHES_TO_FAIL = 3  # unexpected errors checking one asset before it is failed (a human must look)


class SyncPollerStatistics(msgspec.Struct, kw_only=True):
    """Counters of the sync poller."""

    rounds: int = 0
    polls: int = 0
    site_errors: int = 0
    crashes: dict[str, int] = msgspec.field(default_factory=dict)  # GUID -> unexpected errors checking it


async def run_sync_poller(
    *,
    deps: AssetDeps,
    dispatcher: Dispatcher,
    signal: Signal,
    heartbeats: Heartbeats,
    statistics: SyncPollerStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: poll the due syncing assets; wait while the ARS lane is paused."""
    stats = statistics or SyncPollerStatistics()
    task_status.started()
    while True:
        heartbeats.beat(POLLER)
        await deps.lanes.ars.wait_open()
        due = await deps.store.wakeups.due("sync_poll", now=deps.clock(), limit=_BATCH)
        if not due:
            upcoming = await deps.store.wakeups.next_due("sync_poll")
            await signal.wait(math.inf if upcoming is None else upcoming - deps.clock())
            continue
        stats.rounds += 1
        records = [r for w in due if (r := await deps.store.assets.get(w.entity_id)) is not None]
        syncing = [r for r in records if r.state is AssetState.SYNCING]
        for stray in (w for w in due if w.entity_id not in {r.guid for r in syncing}):
            await deps.store.wakeups.clear_if_unchanged(stray, "sync_poll")  # it moved on; its poll is moot
        try:
            await _poll(syncing, deps, dispatcher, stats)
            stats.polls += 1
        except InfrastructureError as exc:
            if not await _pause_lane(exc, deps, stats):
                for record in syncing:  # ARS answers, only the batch listing failed: look again later
                    with contextlib.suppress(StateConflict):
                        await _reschedule(record, deps)


async def _pause_lane(exc: InfrastructureError, deps: AssetDeps, stats: SyncPollerStatistics) -> bool:
    """Pause the lane if its health probe confirms it is down; False when it answers (the polls are retried)."""
    stats.site_errors += 1
    lane = deps.lanes.lane(exc.lane)
    if exc.confirm and not await lane.confirm_down(deps.health.get(exc.lane)):
        log.warning("sync_poll_failed_but_ars_answers", error=exc.reason)
        return False
    await lane.pause(exc.reason, probe="health", actor=POLLER)
    return True


async def _poll(
    records: list[AssetRecord], deps: AssetDeps, dispatcher: Dispatcher, stats: SyncPollerStatistics
) -> None:
    batched = len(records) >= _BATCH_THRESHOLD
    statuses: dict[str, AssetStatus] = {}
    if batched:
        statuses = {s.asset_guid: s for s in await deps.ars.list_in_progress()}

    async def settle(record: AssetRecord) -> None:
        with structlog.contextvars.bound_contextvars(asset_guid=record.guid):
            try:
                status = statuses.get(record.guid)
                # Absent from the in-progress list means ARS has neither an open share nor a pending sync for
                # it: usually done. Its file list says so directly (one request instead of two).
                if status is None and batched and await _confirm_if_synchronised(record, deps, "not in progress"):
                    return
                if status is None:
                    status = await deps.ars.get_status(record.guid)
                await _settle(record, status, deps, dispatcher)
            except StateConflict:
                pass
            except InfrastructureError as exc:  # the poll stays due; it runs again once the lane reopens
                if not await _pause_lane(exc, deps, stats):
                    await _reschedule(record, deps)
            except IntegrationError as exc:
                log.warning("sync_status_check_failed", error=str(exc))
                await _reschedule(record, deps)
            except Exception as exc:  # never let one asset's check take the poller down, nor hide it forever
                log.exception("sync_status_check_crashed")
                stats.crashes[record.guid] = crashes = stats.crashes.get(record.guid, 0) + 1
                if crashes >= _CRASHES_TO_FAIL:
                    reason = f"checking its ERDA sync failed unexpectedly {crashes} times: {type(exc).__name__}: {exc}"
                    await fail_asset(record.guid, deps, reason, actor=POLLER)
                else:
                    await _reschedule(record, deps)

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(settle, record)


async def _settle(record: AssetRecord, status: AssetStatus | None, deps: AssetDeps, dispatcher: Dispatcher) -> None:
    ars_config = deps.config.ars
    if status is None:
        await fail_asset(
            record.guid, deps, "ARS does not know the asset any more (status 404) while it was syncing", actor=POLLER
        )
    elif status.is_synced:
        if not await _confirm_if_synchronised(record, deps, status.status):
            await _reschedule(record, deps)
    elif status.is_sync_failed:
        await _resync(record, deps, dispatcher, f"ERDA sync failed: {status.error_message or status.status}")
    elif deps.clock() - record.state_since > ars_config.sync_stuck_after_s:
        await _resync(
            record, deps, dispatcher, f"stuck in {status.status} for more than {ars_config.sync_stuck_after_s:.0f} s"
        )
    else:
        await _reschedule(record, deps)


async def _confirm_if_synchronised(record: AssetRecord, deps: AssetDeps, ars_status: str) -> bool:
    """Record ``synced`` if ARS holds every uploaded file SYNCHRONIZED with our CRC-32.

    Returns False (nothing recorded) while a file is not yet synchronised; fails the asset, and returns True,
    when ARS holds other bytes than we sent or lost a file.
    """
    uploaded = {f.record.name: f.record.crc32 for f in await deps.store.assets.files(record.guid) if f.uploaded}
    check = await check_in_erda(deps.ars, record.guid, uploaded)
    if check.pending:  # a file not yet synchronised: look again later, whatever else was found
        return False
    problems = check.problems
    if problems:
        await fail_asset(
            record.guid, deps, "ARS synchronised but does not hold our bytes: " + "; ".join(problems), actor=POLLER
        )
        return True
    await deps.store.assets.transition(
        record.guid,
        AssetTrigger.CONFIRM_SYNC,
        expected=AssetState.SYNCING,
        reason=f"ARS status {ars_status}; every file SYNCHRONIZED with our CRC-32",
        actor=POLLER,
        wake=Wake(kind="dispatch", due=deps.clock(), reason="synced: processing comes next"),
    )
    deps.wake_timer()
    log.info("asset_synced")
    return True


async def _resync(record: AssetRecord, deps: AssetDeps, dispatcher: Dispatcher, reason: str) -> None:
    limit = deps.config.ars.max_resyncs
    if record.resyncs >= limit:
        await fail_asset(
            record.guid, deps, f"{reason}; gave up after {record.resyncs} re-synchronisations", actor=POLLER
        )
        return
    log.warning("asset_resync", reason=reason, resyncs=record.resyncs + 1)
    await deps.store.assets.transition(
        record.guid,
        AssetTrigger.RESYNC,
        expected=AssetState.SYNCING,
        reason=f"{reason}; re-synchronising ({record.resyncs + 1}/{limit})",
        actor=POLLER,
        updates={"resyncs": record.resyncs + 1},
    )
    await dispatcher.wake(record.guid, "synchronize again")


async def _reschedule(record: AssetRecord, deps: AssetDeps) -> None:
    config = deps.config.ars
    now = deps.clock()
    waited = max(0.0, now - record.state_since)
    interval = min(config.sync_poll_max_s, max(config.sync_poll_initial_s, waited / 2))
    await deps.store.assets.update(
        record.guid, expected=AssetState.SYNCING, wake=Wake(kind="sync_poll", due=now + interval, reason="ERDA sync")
    )
