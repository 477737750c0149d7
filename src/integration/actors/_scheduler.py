"""The scheduler: wakes parked assets when their time comes; polls ERDA sync status in batches.

It sleeps until the earliest ``next_wake`` in the store (an indexed MIN) or until kicked, then takes only
the due rows (indexed range). The cost of a tick is proportional to the work that is due, never to the
number of assets stored. Due assets that are ``syncing`` are polled here; any other due asset (a retry
after back-off) is handed to the dispatcher.

Polling uses one ``GET /assets/inprogress`` for a batch (ARS lists every asset still syncing or with an open
share); for an asset absent from that list, absence usually means "done", so its file list is read directly.
``synced`` is recorded only when ARS holds every uploaded file SYNCHRONIZED with the CRC-32 taken at intake.
"""

from __future__ import annotations

import structlog
import trio

from integration.actors._asset_actor import AssetDeps, fail_asset
from integration.actors._dispatcher import offer_to_dispatcher
from integration.adapters.ars import AssetStatus
from integration.errors import ArsRejected, InfrastructureError, StateConflict, TransientError
from integration.state_machines import AssetState, AssetTrigger
from integration.store import AssetRecord

__all__ = ["Scheduler", "run_scheduler"]

log = structlog.get_logger()

POLLER = "sync-poller"
_SYNCHRONIZED = "SYNCHRONIZED"
_BATCH_THRESHOLD = 4  # from this many due syncing assets on, one in-progress listing beats N status calls
_IDLE_S = 60.0  # re-read the store at least this often even when nothing is scheduled


class Scheduler:
    """Holds the kick event; :meth:`kick` is what actors call after storing a wake-up time."""

    def __init__(self) -> None:
        self._kicked = trio.Event()
        self.polls = 0
        self.ticks = 0

    def kick(self) -> None:
        """Wake the scheduler: a new or earlier wake-up time may have been stored."""
        self._kicked.set()

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` or until kicked."""
        with trio.move_on_after(max(0.0, seconds)):
            await self._kicked.wait()
        self._kicked = trio.Event()


async def run_scheduler(
    *,
    deps: AssetDeps,
    scheduler: Scheduler,
    dispatch: trio.MemorySendChannel[str],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: wake due assets, poll the syncing ones."""
    task_status.started()
    while True:
        await deps.lane.wait_open()
        next_wake = await deps.store.next_wake()
        now = deps.clock()
        if next_wake is None or next_wake > now:
            await scheduler.wait(_IDLE_S if next_wake is None else min(_IDLE_S, next_wake - now))
            continue
        scheduler.ticks += 1
        due = await deps.store.due(now)
        syncing = [r for r in due if r.state is AssetState.SYNCING]
        for record in due:
            if record.state is not AssetState.SYNCING and not await _hand_over(record, deps, dispatch):
                break  # the dispatcher is full; the rest stay parked for the next tick
        if syncing:
            try:
                await _poll(syncing, deps, dispatch)
                scheduler.polls += 1
            except InfrastructureError as exc:
                await deps.lane.pause(str(exc))


async def _hand_over(record: AssetRecord, deps: AssetDeps, dispatch: trio.MemorySendChannel[str]) -> bool:
    """Clear the asset's wake-up and offer it to the dispatcher (re-parked if it is full); False when full."""
    try:
        await deps.store.update(record.guid, expected=record.state, next_wake=None)
    except StateConflict:
        return True
    return await offer_to_dispatcher(
        record.guid, state=record.state, dispatch=dispatch, store=deps.store, clock=deps.clock
    )


async def _poll(records: list[AssetRecord], deps: AssetDeps, dispatch: trio.MemorySendChannel[str]) -> None:
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
                await _settle(record, status, deps, dispatch)
            except StateConflict:
                pass
            except (TransientError, ArsRejected) as exc:
                await _reschedule(record, deps)
                log.warning("sync_status_check_failed", error=str(exc))

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(settle, record)


async def _settle(
    record: AssetRecord, status: AssetStatus | None, deps: AssetDeps, dispatch: trio.MemorySendChannel[str]
) -> None:
    ars_config = deps.config.ars
    if status is None:
        await _fail(record, deps, "ARS does not know the asset any more (status 404) while it was syncing")
    elif status.is_synced:
        if not await _confirm_if_synchronised(record, deps, status.status):
            await _reschedule(record, deps)
    elif status.is_sync_failed:
        await _resync(record, deps, dispatch, f"ERDA sync failed: {status.error_message or status.status}")
    elif deps.clock() - record.state_since > ars_config.sync_stuck_after_s:
        await _resync(
            record,
            deps,
            dispatch,
            f"stuck in {status.status} for more than {ars_config.sync_stuck_after_s:.0f} s",
        )
    else:
        await _reschedule(record, deps)


async def _confirm_if_synchronised(record: AssetRecord, deps: AssetDeps, ars_status: str) -> bool:
    """Record ``synced`` if ARS holds every uploaded file SYNCHRONIZED with our CRC-32.

    Returns False (nothing recorded) while a file is not yet synchronised; fails the asset, and returns True,
    when ARS holds other bytes than we sent or lost a file.
    """
    held = {f.path.rsplit("/", 1)[-1]: f for f in await deps.ars.list_files(record.guid)}
    problems = []
    for stored in await deps.store.files(record.guid):
        if not stored.uploaded:
            continue
        ars_file = held.get(stored.record.name)
        if ars_file is None:
            problems.append(f"{stored.record.name} is missing in ARS")
        elif ars_file.crc != stored.record.crc32:
            problems.append(f"{stored.record.name}: ARS holds CRC-32 {ars_file.crc}, intake {stored.record.crc32}")
        elif ars_file.sync_status != _SYNCHRONIZED:
            return False
    if problems:
        await _fail(record, deps, "ARS synchronised but does not hold our bytes: " + "; ".join(problems))
        return True
    await deps.store.transition(
        record.guid,
        AssetTrigger.CONFIRM_SYNC,
        expected=AssetState.SYNCING,
        reason=f"ARS status {ars_status}; every file SYNCHRONIZED with our CRC-32",
        actor=POLLER,
        updates={"next_wake": None},
    )
    log.info("asset_synced")
    return True


async def _resync(record: AssetRecord, deps: AssetDeps, dispatch: trio.MemorySendChannel[str], reason: str) -> None:
    limit = deps.config.ars.max_resyncs
    if record.resyncs >= limit:
        await _fail(record, deps, f"{reason}; gave up after {record.resyncs} re-synchronisations")
        return
    log.warning("asset_resync", reason=reason, resyncs=record.resyncs + 1)
    await deps.store.transition(
        record.guid,
        AssetTrigger.RESYNC,
        expected=AssetState.SYNCING,
        reason=f"{reason}; re-synchronising ({record.resyncs + 1}/{limit})",
        actor=POLLER,
        updates={"next_wake": None, "resyncs": record.resyncs + 1},
    )
    await offer_to_dispatcher(
        record.guid, state=AssetState.UPLOADED, dispatch=dispatch, store=deps.store, clock=deps.clock
    )


async def _reschedule(record: AssetRecord, deps: AssetDeps) -> None:
    config = deps.config.ars
    waited = max(0.0, deps.clock() - record.state_since)
    interval = min(config.sync_poll_max_s, max(config.sync_poll_initial_s, waited / 2))
    await deps.store.update(record.guid, expected=AssetState.SYNCING, next_wake=deps.clock() + interval)


async def _fail(record: AssetRecord, deps: AssetDeps, reason: str) -> None:
    await fail_asset(record, deps, reason, actor=POLLER)
