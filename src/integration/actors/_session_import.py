"""Importing one settled session folder: plan, copy, record, rename — and nothing lost on the way.

* Every asset is handled in its own task, which turns *anything* raised for it into an outcome (imported,
  already known, re-delivered, rejected with a note, deferred to the next round), so one bad asset never
  stops its neighbours and no exception group escapes. Only a site problem (the N-Drive mount or the local
  disk) stops the import, and the watcher decides whether it is the site's or this folder's.
* A corrected re-delivery of a quarantined or failed asset replaces its files and metadata (an event says so).
* The folder is renamed ``imported_…`` only when every asset is recorded or rejected and the folder did not
  change meanwhile; the target is persisted (durably) before the rename and recorded after it, so the store
  always knows where the N-Drive copies are.
* A file of a recorded asset that its record lacks, or that changed since it was copied (size or mtime) —
  arriving late, while the daemon was down, or while the folder was renamed — is taken in while nothing of
  the asset went to ARS yet (a late metadata JSON replaces the recorded metadata), else rejected with a note
  next to it. The renamed folder is listed once more for what slipped in during the rename; a late file
  still being written is waited for, a few settle windows long, and then rejected with a note — never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog
import trio

from integration.actors._ars_steps import RECONCILE_FILES, UPDATE_METADATA
from integration.actors._dispatcher import Dispatcher
from integration.actors._intake_support import (
    ACTOR,
    Deferred,
    InFlight,
    Outcome,
    Site,
    WatcherStatistics,
    allocation,
    duplicate,
    entries_of,
    new_asset,
    relevant,
    run_blocking,
)
from integration.adapters.files import LocalPathBlocked, copy_with_crc
from integration.adapters.ndrive import (
    AssetCandidate,
    FileState,
    IntakeRejection,
    IntakeRules,
    SessionPlan,
    SessionSnapshot,
    plan_imported_name,
    plan_session,
    rename_session,
    snapshot_session,
    write_error_note,
    write_session_note,
)
from integration.config import Config
from integration.domain import FileKind, FileRecord
from integration.errors import InfrastructureError, StateConflict, TransientError
from integration.state_machines import NEEDS_HUMAN_STATES, AssetState
from integration.store import Rejection, Store

__all__ = ["SessionImporter"]

log = structlog.get_logger()

T = TypeVar("T")
#: Rounds (each a settle window apart) a late file still being written is waited for after the rename.
_LATE_ROUNDS = 3


class SessionImporter:
    """Imports settled session folders for one watcher."""

    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        dispatcher: Dispatcher,
        copy_limiter: trio.CapacityLimiter,
        ndrive_limiter: trio.CapacityLimiter,
        stats: WatcherStatistics,
    ) -> None:
        self.store = store
        self.config = config
        self.dispatcher = dispatcher
        self.copy_limiter = copy_limiter
        self.ndrive_limiter = ndrive_limiter
        self.stats = stats
        self.rules = IntakeRules.from_config(config)
        self.in_flight = InFlight()

    async def blocking(self, fn: Callable[..., T], *args: Any, what: str, path: Path) -> T:
        """:func:`run_blocking` with the N-Drive I/O timeout and the N-Drive's threads."""
        return await run_blocking(
            fn,
            *args,
            timeout_s=self.config.ndrive.io_timeout_s,
            what=what,
            path=path,
            limiter=self.ndrive_limiter,
            in_flight=self.in_flight,
        )

    async def import_session(self, session: Path, workstation: str, planned_from: SessionSnapshot) -> bool:
        """Import a settled session; True when it is done (imported or rejected as a whole), False to look again.

        Raises :class:`InfrastructureError` for a lane-wide problem (nothing is lost: the next try resumes).
        """
        plan: SessionPlan = await self.blocking(plan_session, session, self.rules, what="planning", path=session)
        if plan.folder_problem is not None:
            await self.reject_folder(session, workstation, plan.folder_problem)
            return True
        for rejection in plan.rejections:
            await self.reject(session, rejection, where=session)
        entries = entries_of(planned_from)
        outcomes = await self._ingest_all(session, plan.candidates, where=session, entries=entries)
        if not await self._settle_outcomes(session, outcomes, where=session):
            return False
        latest = relevant(await self.blocking(snapshot_session, session, what="listing", path=session))
        if latest != planned_from:
            log.info("session_changed_during_import", note="kept open; new files are imported next round")
            return False
        rejected = len(plan.rejections) + sum(isinstance(o, IntakeRejection) for o in outcomes)
        target = await self._rename(session, workstation, len(plan.candidates), rejected)
        if target is None:
            return False
        await self.relist(session, target, planned_from)
        return True

    # -- assets --------------------------------------------------------------------------------------------

    async def _ingest_all(
        self,
        session: Path,
        candidates: tuple[AssetCandidate, ...],
        *,
        where: Path,
        entries: dict[str, FileState],
    ) -> list[Outcome]:
        """Copy and record ``candidates`` (found in ``where``; ``entries`` from its snapshot), each on its own.

        The outcomes are in the order of ``candidates``.
        """
        outcomes: list[Outcome] = [Deferred("not looked at")] * len(candidates)

        async def one(index: int, candidate: AssetCandidate) -> None:
            outcomes[index] = await self._ingest_guarded(session, candidate, where=where, entries=entries)

        async with trio.open_nursery() as nursery:  # copies run in parallel, bounded by the copy limiter
            for index, candidate in enumerate(candidates):
                nursery.start_soon(one, index, candidate)
        return outcomes

    async def _settle_outcomes(self, session: Path, outcomes: list[Outcome], *, where: Path) -> bool:
        """Record rejections; raise the first site problem; True when nothing was deferred."""
        for outcome in outcomes:
            if isinstance(outcome, IntakeRejection):
                await self.reject(session, outcome, where=where)
        sites = [o.error for o in outcomes if isinstance(o, Site)]
        if sites:
            raise sites[0]
        deferred = [o for o in outcomes if isinstance(o, Deferred)]
        self.stats.deferred += len(deferred)
        for item in deferred:
            log.info("asset_import_deferred", reason=item.reason)
        return not deferred

    async def _ingest_guarded(
        self, session: Path, candidate: AssetCandidate, *, where: Path, entries: dict[str, FileState]
    ) -> Outcome:
        """Copy and record one asset; whatever goes wrong becomes its outcome, never an exception."""
        with structlog.contextvars.bound_contextvars(asset_guid=candidate.guid):
            try:
                return await self._ingest(session, candidate, where=where, entries=entries)
            except InfrastructureError as exc:
                return Site(exc)
            except LocalPathBlocked as exc:
                return await self._storage_problem(session, candidate, str(exc))
            except TransientError as exc:
                return Deferred(str(exc))
            except Exception as exc:  # a bug or an input nobody foresaw: that asset's rejection, never a crash
                log.exception("asset_import_crashed")
                return IntakeRejection(
                    name=candidate.guid,
                    reason=(
                        f"{candidate.guid} could not be imported because of an unexpected problem "
                        f"({type(exc).__name__}: {exc}). The files were left as they are; tell the data manager. "
                        "Once it is fixed, upload the asset again in a new session folder."
                    ),
                    paths=tuple(path for path, _ in candidate.files()),
                    guid=candidate.guid,
                )

    async def _ingest(
        self, session: Path, candidate: AssetCandidate, *, where: Path, entries: dict[str, FileState]
    ) -> Outcome:
        guid = candidate.guid
        existing = await self.store.assets.get(guid)
        if existing is not None and existing.session == str(session):
            # Recorded before (a restart, a look again): its copies are complete, but a file may have come late.
            return await self._files_not_recorded(session, where, candidate, entries)
        if existing is not None and existing.state not in NEEDS_HUMAN_STATES:
            return duplicate(candidate, existing.session, existing.state.value)
        local_dir = Path(self.config.storage.root) / guid
        if existing is not None:
            local_dir = local_dir / f"delivery-{int(time.time() * 1000)}"
        records = await self._copy_files(candidate.files(), local_dir, entries)
        asset = new_asset(candidate, session, local_dir, records, self.config)
        if existing is not None:
            try:
                # What ARS holds of it (metadata, files of the old delivery) is brought in line by the actor.
                follow_up = (UPDATE_METADATA, RECONCILE_FILES) if existing.in_ars else ()
                await self.store.assets.redeliver(asset, expected=existing.state, actor=ACTOR, intents=follow_up)
            except StateConflict:
                return Deferred(f"{guid} changed state while its corrected files were copied")
            self.stats.assets_redelivered += 1
            log.info("asset_redelivered", files=len(records), previous_state=existing.state.value)
            await self.dispatcher.wake(guid, "corrected files delivered")
            return "redelivered"
        try:
            await self.store.assets.record_ingested(asset, actor=ACTOR)
        except StateConflict:
            return "known"
        self.stats.assets_ingested += 1
        log.info("asset_ingested", files=len(records))
        await self.dispatcher.wake(guid, "ingested")
        return "ingested"

    async def _copy_files(
        self, files: list[tuple[Path, FileKind]], local_dir: Path, entries: dict[str, FileState]
    ) -> list[tuple[FileRecord, str]]:
        """Copy ``files`` into ``local_dir``; each record keeps the mtime the folder's snapshot saw."""
        records: list[tuple[FileRecord, str]] = []
        for path, kind in files:
            target = local_dir / path.name
            async with self.copy_limiter:
                copied = await run_blocking(
                    copy_with_crc,
                    path,
                    target,
                    timeout_s=self.config.ndrive.copy_timeout_s,
                    what="copying",
                    path=path,
                    limiter=self.ndrive_limiter,
                    in_flight=self.in_flight,
                )
            seen = entries.get(path.name)
            record = FileRecord(
                name=path.name,
                kind=kind,
                size=copied.size,
                crc32=copied.crc32,
                local_path=str(target),
                # what was copied, not what the folder's snapshot saw (a rewrite in between is no late change)
                mtime_ns=copied.mtime_ns if copied.mtime_ns is not None else (seen.mtime_ns if seen else None),
            )
            records.append((record, str(path)))
        return records

    # -- files that came late ------------------------------------------------------------------------------

    async def _files_not_recorded(
        self, session: Path, where: Path, candidate: AssetCandidate, entries: dict[str, FileState]
    ) -> Outcome:
        """Take in (or reject with a note) the files of a recorded asset that its record lacks or that changed."""
        recorded = {f.record.name: f.record for f in await self.store.assets.files(candidate.guid)}
        outcome: Outcome = "known"
        for path, kind in candidate.files():
            record, seen = recorded.get(path.name), entries.get(path.name)
            changed = (
                seen is not None
                and record is not None
                and (seen.size != record.size or (record.mtime_ns is not None and seen.mtime_ns != record.mtime_ns))
            )
            if record is None or changed:
                log.warning("file_not_in_its_asset", file=path.name, changed=changed)
                outcome = await self._late_file(session, where, candidate, path, kind, entries)
        return outcome

    async def _late_file(
        self,
        session: Path,
        where: Path,
        candidate: AssetCandidate,
        path: Path,
        kind: FileKind,
        entries: dict[str, FileState],
    ) -> Outcome:
        """Add one late (or changed) file to its asset while nothing went to ARS, else reject it with a note."""
        guid = candidate.guid
        record = await self.store.assets.get(guid)
        if record is not None and not record.intents and record.state is AssetState.INGESTED:
            local = Path(record.local_dir) / f"late-{int(time.time() * 1000)}"
            [(file, ndrive)] = await self._copy_files([(path, kind)], local, entries)
            others = [
                f.record.size
                for f in await self.store.assets.files(guid)
                if f.record.name != file.name and f.record.kind is not FileKind.METADATA
            ]
            sizes = others if kind is FileKind.METADATA else [*others, file.size]
            metadata = None
            if kind is FileKind.METADATA:  # the corrected JSON describes the asset anew
                metadata = new_asset(candidate, session, Path(record.local_dir), [(file, ndrive)], self.config)
            added = await self.store.assets.add_late_file(
                guid,
                file,
                ndrive,
                allocation_mb=allocation(sizes, self.config),
                actor=ACTOR,
                metadata=metadata,
            )
            if added:
                self.stats.late_files_added += 1
                log.info("late_file_added", file=path.name)
                return "known"
        self.stats.late_files_rejected += 1
        state = record.state.value if record else "unknown"
        await self.reject(
            session,
            IntakeRejection(
                name=path.name,
                reason=(
                    f"{path.name} arrived (or changed) after asset {guid} was imported from this folder, when the "
                    f"asset was already on its way to ARS (state {state}); it was not taken in. If it belongs to "
                    "the asset, upload the asset again with all its files in a new session folder."
                ),
                paths=(path,),
                guid=None,
            ),
            where=where,
        )
        return "known"

    async def relist(self, session: Path, target: Path, planned_from: SessionSnapshot | None) -> None:
        """Look at the renamed folder again for what was not in the plan (see the module docstring).

        ``planned_from`` None (the plan was lost with a crash): every file is compared with the records, and
        copies of assets recorded from another session (rejected as duplicates before) are left alone.
        """
        waiting: set[str] = set()
        for attempt in range(_LATE_ROUNDS):
            if attempt:
                await trio.sleep(self.config.ndrive.settle_s)  # a late file is still being written: let it settle
            waiting = await self._late_arrivals(session, target, planned_from)
            if not waiting:
                break
        for name in sorted(waiting):
            await self.reject(
                session,
                IntakeRejection(
                    name=name,
                    reason=(
                        f"{name} was still being written {_LATE_ROUNDS} settle windows after this folder was "
                        "imported; it was not taken in. Upload it again (with its asset's other files) in a new "
                        "session folder once it is complete."
                    ),
                    paths=(target / name,),
                    guid=None,
                ),
                where=target,
            )
        await self.store.intake.finish_relist(str(session), actor=ACTOR)

    async def _late_arrivals(self, session: Path, target: Path, planned_from: SessionSnapshot | None) -> set[str]:
        """Handle the renamed folder's new or changed files once; the names that must be looked at again."""
        latest = relevant(await self.blocking(snapshot_session, target, what="listing", path=target))
        late = _late_names(latest, planned_from or SessionSnapshot(entries=()))
        if not late:
            return set()
        if planned_from is not None:
            self.stats.late_changes += 1
            log.warning("late_files_after_rename", files=len(late))
        plan = await self.blocking(plan_session, target, self.rules, what="planning", path=target)
        for rejection in plan.rejections:
            if {p.name for p in rejection.paths} & late:
                await self.reject(session, rejection, where=target)
        arrived = tuple(c for c in plan.candidates if {p.name for p, _ in c.files()} & late)
        if planned_from is None:
            arrived = tuple([c for c in arrived if await self._not_anothers(c, session)])
        # Known assets get their late files (or a note); whole late assets are imported.
        outcomes = await self._ingest_all(session, arrived, where=target, entries=entries_of(latest))
        await self._settle_outcomes(session, outcomes, where=target)
        return {
            path.name
            for candidate, outcome in zip(arrived, outcomes, strict=True)
            if isinstance(outcome, Deferred)
            for path, _ in candidate.files()
            if path.name in late
        }

    async def _not_anothers(self, candidate: AssetCandidate, session: Path) -> bool:
        """Whether ``candidate`` is new, or recorded from ``session`` (not a copy left here as a duplicate)."""
        existing = await self.store.assets.get(candidate.guid)
        return existing is None or existing.session == str(session)

    # -- rejections ----------------------------------------------------------------------------------------

    async def reject(self, session: Path, rejection: IntakeRejection, *, where: Path, kind: str = "intake") -> None:
        """Record the rejection, then write its note next to the files (in ``where``).

        The record comes first: a folder where no note can be written (read-only, a permission changed) must
        not keep its good assets from being imported; the rejection shows in ``integration status`` anyway.
        """
        new = await self.store.intake.record_rejection(
            Rejection(
                session=str(session),
                name=rejection.name,
                guid=rejection.guid,
                reason=rejection.reason,
                at=time.time(),
                kind=kind,
            )
        )
        try:  # a failing mount (NdriveUnavailable, not a TransientError) goes up: the lane may pause
            await self.blocking(write_error_note, where, rejection, what="writing a note in", path=where)
        except TransientError as exc:
            log.warning("note_not_written", name=rejection.name, error=str(exc))
        if new:
            self.stats.rejections += 1
            log.warning("asset_rejected", name=rejection.name, asset_guid=rejection.guid, reason=rejection.reason)

    async def _storage_problem(self, session: Path, candidate: AssetCandidate, problem: str) -> Outcome:
        """Local storage refused this asset's copy (a stray file in the way): a note, and a deferral."""
        rejection = IntakeRejection(
            name=candidate.guid,
            reason=(
                f"{candidate.guid} is waiting: the integration server could not store its copy ({problem}). "
                "Nothing is wrong with these files and nothing needs to be done here; the data manager has been "
                "told, and the asset is imported by itself once the problem is fixed."
            ),
            paths=tuple(path for path, _ in candidate.files()),
            guid=candidate.guid,
        )
        try:
            await self.reject(session, rejection, where=session, kind="storage")
        except InfrastructureError as exc:
            return Site(exc)
        return Deferred(problem)

    async def reject_folder(self, session: Path, workstation: str, problem: str) -> None:
        """The whole folder cannot be imported as it is: a folder note and a rejection (a human looks)."""
        await self.store.intake.record_session(
            str(session), workstation=workstation, status="rejected", assets=0, rejected=0, problem=problem
        )
        new = await self.store.intake.record_rejection(
            Rejection(
                session=str(session), name="(session folder)", guid=None, reason=problem, at=time.time(), kind="session"
            )
        )
        try:  # a failing mount goes up, as in reject()
            await self.blocking(write_session_note, session, problem, what="writing a note in", path=session)
        except TransientError as exc:
            log.warning("note_not_written", name="(session folder)", error=str(exc))
        if new:
            self.stats.sessions_rejected += 1
            log.warning("session_rejected", reason=problem)

    # -- rename --------------------------------------------------------------------------------------------

    async def _rename(self, session: Path, workstation: str, assets: int, rejected: int) -> Path | None:
        """Rename ``session`` to ``imported_…``: target persisted first, rename, then recorded."""
        target = await self.blocking(plan_imported_name, session, what="naming", path=session)
        await self.store.intake.start_rename(str(session), str(target), actor=ACTOR)
        try:  # a failing mount goes up with the intent open; the watcher settles it once the N-Drive answers
            await self.blocking(rename_session, session, target, what="renaming", path=session)
        except TransientError as exc:
            await self.store.intake.abandon_rename(str(session), outcome=f"not renamed: {exc}", actor=ACTOR)
            log.info("session_rename_failed", error=str(exc))
            return None
        await self.store.intake.finish_rename(
            str(session), str(target), workstation=workstation, assets=assets, rejected=rejected, actor=ACTOR
        )
        self.stats.sessions_imported += 1
        log.info("session_imported", renamed_to=target.name, assets=assets, rejected=rejected)
        return target


def _late_names(latest: SessionSnapshot, planned_from: SessionSnapshot) -> set[str]:
    """Names in ``latest`` that are new or changed since ``planned_from``."""
    planned = entries_of(planned_from)
    return {entry.name for entry in latest.entries if planned.get(entry.name) != entry}
