"""The N-Drive watcher: imports session folders once they have settled, without ever losing a file.

A session folder is imported only after its contents (names, sizes, mtimes) stayed unchanged for
``ndrive.settle_s``. Each good asset is copied to local storage with a streamed CRC-32, verified, and
recorded (``ingested``); each bad one gets ``<name>.error.txt`` next to it and a rejection row, and the good
ones in the same folder go on. The folder is renamed ``imported_…`` only when every asset in it is recorded
or rejected AND a fresh snapshot equals the one the import was planned from: a file that arrived late
keeps the folder open for the next round instead of being stranded in an ``imported_`` folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import structlog
import trio

from integration.adapters.files import copy_with_crc
from integration.adapters.ndrive import (
    AssetCandidate,
    IntakeRejection,
    IntakeRules,
    SessionSnapshot,
    list_session_folders,
    mark_session_imported,
    plan_session,
    snapshot_session,
    write_error_note,
)
from integration.config import Config
from integration.domain import FileRecord, allocation_mb
from integration.errors import InfrastructureError, StateConflict, TransientError
from integration.store import NewAsset, Rejection, Store

__all__ = ["WatcherStatistics", "run_ndrive_watcher"]

log = structlog.get_logger()

ACTOR = "ndrive-watcher"
_NOTE_SUFFIX = ".error.txt"


class WatcherStatistics(msgspec.Struct, kw_only=True):
    """Counters of the watcher (read by status pages and tests)."""

    scans: int = 0
    sessions_imported: int = 0
    assets_ingested: int = 0
    rejections: int = 0
    late_changes: int = 0


class _Pending(msgspec.Struct):
    snapshot: SessionSnapshot
    stable_since: float


def _relevant(snapshot: SessionSnapshot) -> SessionSnapshot:
    """The snapshot without our own error notes (writing them must not reset the settle window)."""
    return SessionSnapshot(entries=tuple(e for e in snapshot.entries if not e.name.endswith(_NOTE_SUFFIX)))


async def run_ndrive_watcher(
    *,
    store: Store,
    config: Config,
    dispatch: trio.MemorySendChannel[str],
    copy_limiter: trio.CapacityLimiter,
    statistics: WatcherStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: scan every ``ndrive.scan_interval_s``; import settled session folders."""
    stats = statistics if statistics is not None else WatcherStatistics()
    rules = IntakeRules.from_config(config)
    root = Path(config.ndrive.root)
    pending: dict[Path, _Pending] = {}
    task_status.started()
    while True:
        stats.scans += 1
        for workstation in config.ndrive.workstations:
            sessions = await trio.to_thread.run_sync(list_session_folders, root, workstation)
            for session in sessions:
                try:
                    await _consider(session, workstation, pending, store, config, rules, dispatch, copy_limiter, stats)
                except TransientError as exc:
                    log.warning("session_scan_failed", session=str(session), error=str(exc))
                except InfrastructureError as exc:  # local disk full: nothing is lost, try again next scan
                    log.warning("session_import_paused", session=str(session), lane=exc.lane, error=str(exc))
        await trio.sleep(config.ndrive.scan_interval_s)


async def _consider(
    session: Path,
    workstation: str,
    pending: dict[Path, _Pending],
    store: Store,
    config: Config,
    rules: IntakeRules,
    dispatch: trio.MemorySendChannel[str],
    copy_limiter: trio.CapacityLimiter,
    stats: WatcherStatistics,
) -> None:
    snapshot = _relevant(await trio.to_thread.run_sync(snapshot_session, session))
    now = trio.current_time()
    seen = pending.get(session)
    if seen is None or seen.snapshot != snapshot:
        pending[session] = _Pending(snapshot, now)
        return
    if now - seen.stable_since < config.ndrive.settle_s:
        return
    with structlog.contextvars.bound_contextvars(session=str(session)):
        done = await _import_session(
            session, workstation, snapshot, store, config, rules, dispatch, copy_limiter, stats
        )
    if done:
        del pending[session]
    else:
        stats.late_changes += 1
        pending[session] = _Pending(_relevant(await trio.to_thread.run_sync(snapshot_session, session)), now)


async def _import_session(
    session: Path,
    workstation: str,
    planned_from: SessionSnapshot,
    store: Store,
    config: Config,
    rules: IntakeRules,
    dispatch: trio.MemorySendChannel[str],
    copy_limiter: trio.CapacityLimiter,
    stats: WatcherStatistics,
) -> bool:
    """Import a settled session; True when it was marked imported, False when it changed meanwhile."""
    plan = await trio.to_thread.run_sync(plan_session, session, rules)
    rejected = 0
    for rejection in plan.rejections:
        rejected += await _reject(session, rejection, store, stats)
    ingested = 0
    for candidate in plan.candidates:
        outcome = await _ingest(session, workstation, candidate, store, config, copy_limiter, stats)
        if isinstance(outcome, IntakeRejection):
            rejected += await _reject(session, outcome, store, stats)
        elif outcome:
            ingested += 1
            await dispatch.send(candidate.guid)
    latest = _relevant(await trio.to_thread.run_sync(snapshot_session, session))
    if latest != planned_from:
        log.info("session_changed_during_import", note="kept open; new files are imported next round")
        return False
    imported = await trio.to_thread.run_sync(mark_session_imported, session)
    await store.record_session(
        str(session), workstation=workstation, status="imported", assets=len(plan.candidates), rejected=rejected
    )
    stats.sessions_imported += 1
    log.info("session_imported", renamed_to=imported.name, assets=ingested, rejected=rejected)
    return True


async def _reject(session: Path, rejection: IntakeRejection, store: Store, stats: WatcherStatistics) -> int:
    await trio.to_thread.run_sync(write_error_note, session, rejection)
    new = await store.record_rejection(
        Rejection(
            session=str(session),
            name=rejection.name,
            guid=rejection.guid,
            reason=rejection.reason,
            at=time.time(),
        )
    )
    if new:
        stats.rejections += 1
        log.warning("asset_rejected", name=rejection.name, asset_guid=rejection.guid, reason=rejection.reason)
    return 1


async def _ingest(
    session: Path,
    workstation: str,
    candidate: AssetCandidate,
    store: Store,
    config: Config,
    copy_limiter: trio.CapacityLimiter,
    stats: WatcherStatistics,
) -> bool | IntakeRejection:
    """Copy and record one asset; True if newly recorded, False if it was already, or a rejection."""
    guid = candidate.guid
    existing = await store.asset(guid)
    if existing is not None:
        if existing.session == str(session):
            return False  # recorded before a restart; the copy and record are complete
        return IntakeRejection(
            name=guid,
            reason=(
                f"the GUID {guid} was already imported from session {existing.session} "
                f"(state {existing.state.value}); this second copy was left here untouched. "
                "Give the asset a new GUID or remove the duplicate."
            ),
            paths=tuple(path for path, _ in candidate.files()),
            guid=guid,
        )
    local_dir = Path(config.storage.root) / guid
    records: list[tuple[FileRecord, str]] = []
    for path, kind in candidate.files():
        target = local_dir / path.name
        async with copy_limiter:
            copied = await trio.to_thread.run_sync(copy_with_crc, path, target)
        records.append(
            (
                FileRecord(name=path.name, kind=kind, size=copied.size, crc32=copied.crc32, local_path=str(target)),
                str(path),
            )
        )
    metadata = candidate.metadata.metadata
    uploadable = [r.size for r, _ in records if r.kind.value != "metadata"]
    new = NewAsset(
        guid=guid,
        pipeline=metadata.pipeline_name,
        institution=metadata.institution,
        collection=metadata.collection,
        workstation=metadata.workstation_name,
        session=str(session),
        local_dir=str(local_dir),
        allocation_mb=allocation_mb(
            uploadable,
            headroom_fraction=config.ars.allocation_headroom_fraction,
            headroom_min_mb=config.ars.allocation_headroom_min_mb,
        ),
        metadata_json=candidate.metadata.encode(),
        files=tuple(records),
    )
    try:
        await store.record_ingested(new, actor=ACTOR)
    except StateConflict:
        return False
    stats.assets_ingested += 1
    log.info("asset_ingested", asset_guid=guid, files=len(records))
    return True
