"""Importing one settled session folder: plan, copy, record, rename — and nothing lost on the way.

* Every asset is handled in its own task, which turns *anything* raised for it into an outcome (imported,
  already known, re-delivered, rejected with a note, deferred to the next round), so one bad asset never
  stops its neighbours and no exception group escapes. Only a site problem (the N-Drive mount or the local
  disk) stops the import, and it pauses that lane.
* A corrected re-delivery of a quarantined or failed asset replaces its files and metadata (an event says so).
* The folder is renamed ``imported_…`` only when every asset is recorded or rejected and the folder did not
  change meanwhile; the target is persisted (durably) before the rename and recorded after it, so the store
  always knows where the N-Drive copies are.
* A shared file system cannot make the rename atomic with the last look, so the renamed folder is listed
  again: a late sibling is added to its asset while nothing of it went to ARS yet, or rejected with a note;
  a whole late asset is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog
import trio

from integration.actors._ars_steps import RECONCILE_FILES, UPDATE_METADATA
from integration.actors._dispatcher import Dispatcher
from integration.adapters.files import LocalPathBlocked, copy_with_crc
from integration.adapters.ndrive import (
    AssetCandidate,
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
from integration.domain import FileKind, FileRecord, allocation_mb
from integration.errors import InfrastructureError, NdriveUnavailable, StateConflict, TransientError
from integration.state_machines import NEEDS_HUMAN_STATES
from integration.store import NewAsset, Rejection, Store

__all__ = ["ACTOR", "SessionImporter", "WatcherStatistics", "relevant", "run_blocking"]

log = structlog.get_logger()

ACTOR = "ndrive-watcher"
_NOTE_SUFFIX = ".error.txt"
T = TypeVar("T")


class WatcherStatistics(msgspec.Struct, kw_only=True):
    """Counters of the watcher (read by status pages and tests)."""

    scans: int = 0
    sessions_imported: int = 0
    sessions_rejected: int = 0
    assets_ingested: int = 0
    assets_redelivered: int = 0
    rejections: int = 0
    late_changes: int = 0
    late_files_added: int = 0
    late_files_rejected: int = 0
    deferred: int = 0


class _Deferred(msgspec.Struct, frozen=True):
    """The asset could not be imported this round (a changed source, a busy file); the folder stays open."""

    reason: str


class _Site(msgspec.Struct, frozen=True):
    """A lane-wide problem stopped this asset (the N-Drive mount, the local disk)."""

    error: InfrastructureError


_Outcome = str | IntakeRejection | _Deferred | _Site  # str: "ingested", "known", "redelivered"


def relevant(snapshot: SessionSnapshot) -> SessionSnapshot:
    """The snapshot without our own error notes (writing them must not reset the settle window)."""
    return SessionSnapshot(entries=tuple(e for e in snapshot.entries if not e.name.endswith(_NOTE_SUFFIX)))


async def run_blocking(fn: Callable[..., T], *args: Any, timeout_s: float, what: str, path: Path) -> T:
    """Run blocking N-Drive/file work in a worker thread within ``timeout_s``.

    A call that hangs (a stuck mount) is abandoned and becomes :class:`NdriveUnavailable`, which pauses the
    intake lane; an abandoned copy only ever leaves a ``.partial`` file, which the next copy overwrites.
    """
    try:
        with trio.fail_after(timeout_s):
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    except trio.TooSlowError:
        raise NdriveUnavailable(
            f"the N-Drive did not answer within {timeout_s:g} s ({what} {path}): check the mount; "
            "the intake resumes by itself once it answers",
            path=str(path),
        ) from None


class SessionImporter:
    """Imports settled session folders for one watcher."""

    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        dispatcher: Dispatcher,
        copy_limiter: trio.CapacityLimiter,
        stats: WatcherStatistics,
    ) -> None:
        self.store = store
        self.config = config
        self.dispatcher = dispatcher
        self.copy_limiter = copy_limiter
        self.stats = stats
        self.rules = IntakeRules.from_config(config)

    async def blocking(self, fn: Callable[..., T], *args: Any, what: str, path: Path) -> T:
        """:func:`run_blocking` with the N-Drive I/O timeout."""
        return await run_blocking(fn, *args, timeout_s=self.config.ndrive.io_timeout_s, what=what, path=path)

    async def import_session(self, session: Path, workstation: str, planned_from: SessionSnapshot) -> bool:
        """Import a settled session; True when it is done (imported or rejected as a whole), False to look again.

        Raises :class:`InfrastructureError` for a lane-wide problem (nothing is lost: the next try resumes).
        """
        plan: SessionPlan = await self.blocking(plan_session, session, self.rules, what="planning", path=session)
        if plan.folder_problem is not None:
            await self._reject_folder(session, workstation, plan.folder_problem)
            return True
        for rejection in plan.rejections:
            await self.reject(session, rejection, where=session)
        sizes = {entry.name: entry.size for entry in planned_from.entries}
        outcomes = await self._ingest_all(session, plan.candidates, where=session, sizes=sizes)
        if not await self._settle_outcomes(session, outcomes, where=session):
            return False
        latest = relevant(await self.blocking(snapshot_session, session, what="listing", path=session))
        if latest != planned_from:
            log.info("session_changed_during_import", note="kept open; new files are imported next round")
            return False
        target = await self._rename(
            session,
            workstation,
            len(plan.candidates),
            len(plan.rejections) + sum(isinstance(o, IntakeRejection) for o in outcomes),
        )
        if target is None:
            return False
        await self._late_arrivals(session, target, planned_from)
        return True

    # -- assets --------------------------------------------------------------------------------------------

    async def _ingest_all(
        self, session: Path, candidates: tuple[AssetCandidate, ...], *, where: Path, sizes: dict[str, int]
    ) -> list[_Outcome]:
        """Copy and record ``candidates`` (found in ``where``; ``sizes`` from its snapshot), each in its own task."""
        outcomes: list[_Outcome] = []

        async def one(candidate: AssetCandidate) -> None:
            outcomes.append(await self._ingest_guarded(session, candidate, where=where, sizes=sizes))

        async with trio.open_nursery() as nursery:  # copies run in parallel, bounded by the copy limiter
            for candidate in candidates:
                nursery.start_soon(one, candidate)
        return outcomes

    async def _settle_outcomes(self, session: Path, outcomes: list[_Outcome], *, where: Path) -> bool:
        """Record rejections; raise the first site problem; True when nothing was deferred."""
        for outcome in outcomes:
            if isinstance(outcome, IntakeRejection):
                await self.reject(session, outcome, where=where)
        sites = [o.error for o in outcomes if isinstance(o, _Site)]
        if sites:
            raise sites[0]
        deferred = [o for o in outcomes if isinstance(o, _Deferred)]
        self.stats.deferred += len(deferred)
        for item in deferred:
            log.info("asset_import_deferred", reason=item.reason)
        return not deferred

    async def _ingest_guarded(
        self, session: Path, candidate: AssetCandidate, *, where: Path, sizes: dict[str, int]
    ) -> _Outcome:
        """Copy and record one asset; whatever goes wrong becomes its outcome, never an exception."""
        with structlog.contextvars.bound_contextvars(asset_guid=candidate.guid):
            try:
                return await self._ingest(session, candidate, where=where, sizes=sizes)
            except InfrastructureError as exc:
                return _Site(exc)
            except LocalPathBlocked as exc:
                await self._storage_problem(session, candidate, str(exc))
                return _Deferred(str(exc))
            except TransientError as exc:
                return _Deferred(str(exc))
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
        self, session: Path, candidate: AssetCandidate, *, where: Path, sizes: dict[str, int]
    ) -> _Outcome:
        guid = candidate.guid
        existing = await self.store.assets.get(guid)
        if existing is not None and existing.session == str(session):
            # Recorded before (a restart, a look again): its copies are complete, but a file may have come late.
            await self._files_not_recorded(session, where, candidate, sizes)
            return "known"
        if existing is not None and existing.state not in NEEDS_HUMAN_STATES:
            return _duplicate(candidate, existing.session, existing.state.value)
        local_dir = Path(self.config.storage.root) / guid
        if existing is not None:
            local_dir = local_dir / f"delivery-{int(time.time() * 1000)}"
        records = await self._copy_files(candidate.files(), local_dir)
        asset = _new_asset(candidate, session, local_dir, records, self.config)
        if existing is not None:
            try:
                # What ARS holds of it (metadata, files of the old delivery) is brought in line by the actor.
                follow_up = (UPDATE_METADATA, RECONCILE_FILES) if existing.in_ars else ()
                await self.store.assets.redeliver(asset, expected=existing.state, actor=ACTOR, intents=follow_up)
            except StateConflict:
                return _Deferred(f"{guid} changed state while its corrected files were copied")
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

    async def _copy_files(self, files: list[tuple[Path, FileKind]], local_dir: Path) -> list[tuple[FileRecord, str]]:
        records: list[tuple[FileRecord, str]] = []
        for path, kind in files:
            target = local_dir / path.name
            async with self.copy_limiter:
                copied = await run_blocking(
                    copy_with_crc, path, target, timeout_s=self.config.ndrive.copy_timeout_s, what="copying", path=path
                )
            records.append(
                (
                    FileRecord(name=path.name, kind=kind, size=copied.size, crc32=copied.crc32, local_path=str(target)),
                    str(path),
                )
            )
        return records

    # -- rejections ----------------------------------------------------------------------------------------

    async def reject(self, session: Path, rejection: IntakeRejection, *, where: Path, kind: str = "intake") -> None:
        """Write the note next to the files (in ``where``) and record the rejection."""
        await self.blocking(write_error_note, where, rejection, what="writing a note in", path=where)
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
        if new:
            self.stats.rejections += 1
            log.warning("asset_rejected", name=rejection.name, asset_guid=rejection.guid, reason=rejection.reason)

    async def _storage_problem(self, session: Path, candidate: AssetCandidate, problem: str) -> None:
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
        await self.reject(session, rejection, where=session, kind="storage")

    async def _reject_folder(self, session: Path, workstation: str, problem: str) -> None:
        await self.blocking(write_session_note, session, problem, what="writing a note in", path=session)
        await self.store.intake.record_session(
            str(session), workstation=workstation, status="rejected", assets=0, rejected=0, problem=problem
        )
        new = await self.store.intake.record_rejection(
            Rejection(
                session=str(session), name="(session folder)", guid=None, reason=problem, at=time.time(), kind="session"
            )
        )
        if new:
            self.stats.sessions_rejected += 1
            log.warning("session_rejected", reason=problem)

    # -- rename and what came late -------------------------------------------------------------------------

    async def _rename(self, session: Path, workstation: str, assets: int, rejected: int) -> Path | None:
        """Rename ``session`` to ``imported_…``: target persisted first, rename, then recorded."""
        target = await self.blocking(plan_imported_name, session, what="naming", path=session)
        await self.store.intake.start_rename(str(session), str(target), actor=ACTOR)
        try:
            await self.blocking(rename_session, session, target, what="renaming", path=session)
        except NdriveUnavailable:
            raise  # the intent stays; the watcher settles it once the N-Drive answers again
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

    async def _late_arrivals(self, session: Path, target: Path, planned_from: SessionSnapshot) -> None:
        """Handle what is in the renamed folder but was not in the plan (see the module docstring)."""
        latest = relevant(await self.blocking(snapshot_session, target, what="listing", path=target))
        planned = {entry.name: entry for entry in planned_from.entries}
        late = {entry.name for entry in latest.entries if planned.get(entry.name) != entry}
        if not late:
            return
        self.stats.late_changes += 1
        log.warning("late_files_after_rename", files=sorted(late))
        plan = await self.blocking(plan_session, target, self.rules, what="planning", path=target)
        for rejection in plan.rejections:
            if {p.name for p in rejection.paths} & late:
                await self.reject(session, rejection, where=target)
        arrived = tuple(c for c in plan.candidates if {p.name for p, _ in c.files()} & late)
        if arrived:  # known assets get their late files (or a note); whole late assets are imported
            sizes = {entry.name: entry.size for entry in latest.entries}
            outcomes = await self._ingest_all(session, arrived, where=target, sizes=sizes)
            await self._settle_outcomes(session, outcomes, where=target)

    async def _files_not_recorded(
        self, session: Path, where: Path, candidate: AssetCandidate, sizes: dict[str, int]
    ) -> None:
        """Add (or reject with a note) the files of a recorded asset that its record lacks or that changed size."""
        recorded = {f.record.name: f.record.size for f in await self.store.assets.files(candidate.guid)}
        for path, kind in candidate.files():
            if recorded.get(path.name) != sizes.get(path.name, recorded.get(path.name)) or path.name not in recorded:
                log.warning("file_not_in_its_asset", file=path.name)
                await self._late_file(session, where, candidate.guid, path, kind)

    async def _late_file(self, session: Path, target: Path, guid: str, path: Path, kind: FileKind) -> None:
        record = await self.store.assets.get(guid)
        if record is not None and not record.intents and record.state.value == "ingested":
            local = Path(record.local_dir) / f"late-{int(time.time() * 1000)}"
            [(file, ndrive)] = await self._copy_files([(path, kind)], local)
            sizes = [f.record.size for f in await self.store.assets.files(guid) if f.record.name != file.name]
            allocation = _allocation([*sizes, file.size], self.config)
            if await self.store.assets.add_late_file(guid, file, ndrive, allocation_mb=allocation, actor=ACTOR):
                self.stats.late_files_added += 1
                log.info("late_file_added", asset_guid=guid, file=path.name)
                return
        self.stats.late_files_rejected += 1
        state = record.state.value if record else "unknown"
        await self.reject(
            session,
            IntakeRejection(
                name=path.name,
                reason=(
                    f"{path.name} arrived after asset {guid} was imported from this folder, when the asset was "
                    f"already on its way to ARS (state {state}); it was not added. If it belongs to the asset, "
                    "upload the asset again with all its files in a new session folder."
                ),
                paths=(path,),
                guid=None,
            ),
            where=target,
        )


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


def _allocation(sizes: list[int], config: Config) -> int:
    return allocation_mb(
        sizes,
        headroom_fraction=config.ars.allocation_headroom_fraction,
        headroom_min_mb=config.ars.allocation_headroom_min_mb,
    )


def _new_asset(
    candidate: AssetCandidate, session: Path, local_dir: Path, records: list[tuple[FileRecord, str]], config: Config
) -> NewAsset:
    metadata = candidate.metadata.metadata
    return NewAsset(
        guid=candidate.guid,
        pipeline=metadata.pipeline_name,
        institution=metadata.institution,
        collection=metadata.collection,
        workstation=metadata.workstation_name,
        session=str(session),
        local_dir=str(local_dir),
        allocation_mb=_allocation([r.size for r, _ in records if r.kind is not FileKind.METADATA], config),
        metadata_json=candidate.metadata.encode(),
        files=tuple(records),
    )
