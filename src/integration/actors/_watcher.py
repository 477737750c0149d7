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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog
import trio

from integration.actors._dispatcher import offer_to_dispatcher
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
from integration.domain import FileKind, FileRecord, allocation_mb
from integration.errors import InfrastructureError, StateConflict, TransientError
from integration.state_machines import AssetState
from integration.store import NewAsset, Rejection, Store

__all__ = ["WatcherStatistics", "run_ndrive_watcher"]

log = structlog.get_logger()

T = TypeVar("T")

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
    kick_scheduler: Callable[[], None] = lambda: None,
    statistics: WatcherStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: scan every ``ndrive.scan_interval_s``; import settled session folders.

    New assets go to the dispatcher; when it is full they are parked with a wake-up time and
    ``kick_scheduler`` is called, so the intake never waits for ARS.
    """
    watcher = _Watcher(store, config, dispatch, copy_limiter, statistics or WatcherStatistics(), kick_scheduler)
    task_status.started()
    while True:
        await watcher.scan()
        await trio.sleep(config.ndrive.scan_interval_s)


class _Watcher:
    """The watcher's state between scans: which folders were seen with which snapshot since when."""

    def __init__(
        self,
        store: Store,
        config: Config,
        dispatch: trio.MemorySendChannel[str],
        copy_limiter: trio.CapacityLimiter,
        stats: WatcherStatistics,
        kick_scheduler: Callable[[], None],
    ) -> None:
        self.store = store
        self.config = config
        self.dispatch = dispatch
        self.copy_limiter = copy_limiter
        self.stats = stats
        self.kick_scheduler = kick_scheduler
        self.rules = IntakeRules.from_config(config)
        self.pending: dict[Path, _Pending] = {}

    async def scan(self) -> None:
        """One pass over every workstation folder; a failure in one folder never stops the others."""
        self.stats.scans += 1
        root = Path(self.config.ndrive.root)
        for workstation in self.config.ndrive.workstations:
            try:
                sessions = await _in_thread(list_session_folders, root, workstation)
            except TransientError as exc:  # e.g. the N-Drive is not mounted right now
                log.warning("ndrive_unavailable", workstation=workstation, error=str(exc))
                continue
            for session in sessions:
                try:
                    await self._consider(session, workstation)
                except TransientError as exc:
                    log.warning("session_scan_failed", session=str(session), error=str(exc))
                except InfrastructureError as exc:  # local disk full: nothing is lost, try again next scan
                    log.warning("session_import_paused", session=str(session), lane=exc.lane, error=str(exc))

    async def _consider(self, session: Path, workstation: str) -> None:
        snapshot = _relevant(await _in_thread(snapshot_session, session))
        now = trio.current_time()
        seen = self.pending.get(session)
        if seen is None or seen.snapshot != snapshot:
            self.pending[session] = _Pending(snapshot, now)
            return
        if now - seen.stable_since < self.config.ndrive.settle_s:
            return
        with structlog.contextvars.bound_contextvars(session=str(session)):
            done = await self._import_session(session, workstation, snapshot)
        if done:
            del self.pending[session]
        else:
            self.stats.late_changes += 1
            self.pending[session] = _Pending(_relevant(await _in_thread(snapshot_session, session)), now)

    async def _import_session(self, session: Path, workstation: str, planned_from: SessionSnapshot) -> bool:
        """Import a settled session; True when it was marked imported, False when it changed meanwhile."""
        plan = await _in_thread(plan_session, session, self.rules)
        for rejection in plan.rejections:
            await self._reject(session, rejection)
        outcomes: list[bool | IntakeRejection] = []

        async def ingest(candidate: AssetCandidate) -> None:
            outcome = await self._ingest(session, candidate)
            outcomes.append(outcome)
            parked = outcome is True and not await offer_to_dispatcher(
                candidate.guid, state=AssetState.INGESTED, dispatch=self.dispatch, store=self.store
            )
            if parked:
                self.kick_scheduler()

        async with trio.open_nursery() as nursery:  # copies run in parallel, bounded by the copy limiter
            for candidate in plan.candidates:
                nursery.start_soon(ingest, candidate)
        late_rejections = [outcome for outcome in outcomes if isinstance(outcome, IntakeRejection)]
        for rejection in late_rejections:
            await self._reject(session, rejection)
        rejected = len(plan.rejections) + len(late_rejections)
        ingested = sum(1 for outcome in outcomes if outcome is True)
        latest = _relevant(await _in_thread(snapshot_session, session))
        if latest != planned_from:
            log.info("session_changed_during_import", note="kept open; new files are imported next round")
            return False
        imported = await _in_thread(mark_session_imported, session)
        await self.store.record_session(
            str(session), workstation=workstation, status="imported", assets=len(plan.candidates), rejected=rejected
        )
        self.stats.sessions_imported += 1
        log.info("session_imported", renamed_to=imported.name, assets=ingested, rejected=rejected)
        return True

    async def _reject(self, session: Path, rejection: IntakeRejection) -> None:
        await _in_thread(write_error_note, session, rejection)
        new = await self.store.record_rejection(
            Rejection(
                session=str(session), name=rejection.name, guid=rejection.guid, reason=rejection.reason, at=time.time()
            )
        )
        if new:
            self.stats.rejections += 1
            log.warning("asset_rejected", name=rejection.name, asset_guid=rejection.guid, reason=rejection.reason)

    async def _ingest(self, session: Path, candidate: AssetCandidate) -> bool | IntakeRejection:
        """Copy and record one asset; True if newly recorded, False if it was already, or a rejection."""
        guid = candidate.guid
        existing = await self.store.asset(guid)
        if existing is not None:
            if existing.session == str(session):
                return False  # recorded before a restart; the copy and record are complete
            return _duplicate(candidate, existing.session, existing.state.value)
        local_dir = Path(self.config.storage.root) / guid
        records: list[tuple[FileRecord, str]] = []
        for path, kind in candidate.files():
            target = local_dir / path.name
            async with self.copy_limiter:
                copied = await _in_thread(copy_with_crc, path, target)
            record = FileRecord(name=path.name, kind=kind, size=copied.size, crc32=copied.crc32, local_path=str(target))
            records.append((record, str(path)))
        try:
            await self.store.record_ingested(
                _new_asset(candidate, session, local_dir, records, self.config), actor=ACTOR
            )
        except StateConflict:
            return False
        self.stats.assets_ingested += 1
        log.info("asset_ingested", asset_guid=guid, files=len(records))
        return True


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a worker thread; abandoned on cancel so shutdown never waits for a big copy
    (an abandoned copy only ever leaves a ``.partial`` file, which the next copy overwrites)."""
    return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


def _duplicate(candidate: AssetCandidate, first_session: str, state: str) -> IntakeRejection:
    return IntakeRejection(
        name=candidate.guid,
        reason=(
            f"the GUID {candidate.guid} was already imported from session {first_session} (state {state}); "
            "this second copy was left here untouched. Give the asset a new GUID or remove the duplicate."
        ),
        paths=tuple(path for path, _ in candidate.files()),
        guid=candidate.guid,
    )


def _new_asset(
    candidate: AssetCandidate, session: Path, local_dir: Path, records: list[tuple[FileRecord, str]], config: Config
) -> NewAsset:
    metadata = candidate.metadata.metadata
    uploadable = [r.size for r, _ in records if r.kind is not FileKind.METADATA]
    return NewAsset(
        guid=candidate.guid,
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
