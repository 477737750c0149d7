"""The N-Drive watcher: finds settled session folders and has them imported, without ever losing a file.

A session folder is imported only after its contents (names, sizes, mtimes) stayed unchanged for
``ndrive.settle_s`` (:mod:`._session_import` does the import). Failures stay in their scope:

- the N-Drive mount fails or hangs (every call has the ``ndrive.io_timeout_s`` / ``copy_timeout_s``
  timeout): the *intake* lane pauses and is probed; the local disk is full or failing: the *storage* lane;
- one session folder cannot be read: that folder waits, the others go on. A lane-wide error raised for one
  folder pauses the lane only when the lane's health probe fails too (the mount or disk really is down);
  while the probe answers, it is that folder's problem: it is looked at again after a growing rest (a hung
  folder must not use up the N-Drive's threads), and after a few failed rounds in a row a rejection tells
  the data manager (``integration status``), resolved once the folder is imported;
- one asset is bad: that asset is rejected with a note, its neighbours go on;
- a folder rejected as a whole is not looked at again until it changes (the digitiser fixed it);
- anything unexpected in one folder is logged and that folder waits; a folder that crashes the import a few
  rounds in a row is rejected as a whole (looked at again once it changes or the daemon restarts); the
  watcher itself never crash-loops.

At every start (and whenever a rename may have been interrupted) it settles unfinished renames first, so
the store always knows where each session's files are on the N-Drive, and finishes the look at renamed
folders for files that slipped in during the rename (each guarded: one unreadable folder never stops the
others).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import msgspec
import structlog
import trio

from integration.actors._dispatcher import Dispatcher
from integration.actors._heartbeats import Heartbeats
from integration.actors._intake_support import ACTOR, WatcherStatistics, relevant, run_blocking
from integration.actors._lanes import HealthProbe, Lanes
from integration.actors._session_import import SessionImporter
from integration.adapters.ndrive import (
    SessionSnapshot,
    find_imported_folder,
    list_session_folders,
    missing_workstations,
    rename_outcome,
    snapshot_session,
)
from integration.config import Config
from integration.errors import InfrastructureError, TransientError
from integration.store import Rejection, Store

__all__ = ["WatcherStatistics", "ndrive_health_probe", "run_ndrive_watcher"]

log = structlog.get_logger()

#: Failed rounds in a row after which a folder's problem is reported (and a crashing folder rejected).
FAILED_ROUNDS = 3
#: The longest rest of a folder that keeps failing between two looks at it.
REST_MAX_S = 600.0


class _Failure(msgspec.Struct, frozen=True):
    problem: str
    rounds: int
    crashed: bool


class _Pending(msgspec.Struct):
    snapshot: SessionSnapshot
    stable_since: float


async def run_ndrive_watcher(
    *,
    store: Store,
    config: Config,
    dispatcher: Dispatcher,
    lanes: Lanes,
    copy_limiter: trio.CapacityLimiter,
    ndrive_limiter: trio.CapacityLimiter,
    heartbeats: Heartbeats,
    health: Mapping[str, HealthProbe] | None = None,
    statistics: WatcherStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: every ``ndrive.scan_interval_s``, look at every workstation folder and import what settled.

    While the intake or storage lane is paused it waits for it (the lane prober probes it). ``health`` holds
    the lanes' health probes (by lane name), which tell a site problem from one folder's.
    """
    importer = SessionImporter(
        store=store,
        config=config,
        dispatcher=dispatcher,
        copy_limiter=copy_limiter,
        ndrive_limiter=ndrive_limiter,
        stats=statistics or WatcherStatistics(),
    )
    watcher = _Watcher(importer, lanes, health or {})
    task_status.started()
    while True:
        heartbeats.beat(ACTOR)
        await lanes.intake.wait_open()
        await lanes.storage.wait_open()
        try:
            await watcher.locate_earlier_renames()
            await watcher.settle_renames()
            await watcher.scan()
        except InfrastructureError as exc:
            await lanes.lane(exc.lane).pause(exc.reason, probe="health", actor=ACTOR)
            continue
        await trio.sleep(config.ndrive.scan_interval_s)


#: What a failure counter counts: the work ("scan", "rename", "relist", "locate") and its folder.
_Work = tuple[str, Path]


class _Watcher:
    """The watcher's state between scans: which folders were seen with which snapshot since when, and which
    failed lately (each kind of work on a folder counted on its own)."""

    def __init__(self, importer: SessionImporter, lanes: Lanes, health: Mapping[str, HealthProbe]) -> None:
        self.importer = importer
        self.lanes = lanes
        self.health = health
        self.config = importer.config
        self.store = importer.store
        self.stats = importer.stats
        self.pending: dict[Path, _Pending] = {}
        self.rejected: dict[Path, SessionSnapshot] = {}  # folders rejected as a whole, as they were then
        self.failures: dict[_Work, int] = {}  # failed rounds in a row
        self.reported: set[_Work] = set()  # failing work a human was told about (once per failing spell)
        self.resting: dict[_Work, float] = {}  # failed work: not tried again before this (trio) time
        self.located = False  # the first release's renames were looked for (once per start)

    async def locate_earlier_renames(self) -> None:
        """Find where the first release renamed its sessions (it did not record it), so every file's N-Drive
        path is right again; a session whose folder cannot be found keeps its old paths (and is logged)."""
        if self.located:
            return
        for session, names in (await self.store.intake.unlocated_sessions()).items():
            with structlog.contextvars.bound_contextvars(session=session):
                await self._attempt(("locate", Path(session)), self._locate(session, names))
        self.located = True

    async def _locate(self, session: str, names: list[str]) -> None:
        target = await self.importer.blocking(
            find_imported_folder, Path(session), names, what="looking for", path=Path(session)
        )
        if target is None:
            log.warning("earlier_rename_not_found", error="no single imported_ folder holds its files")
            return
        await self.store.intake.relocate(session, str(target), actor=ACTOR)
        log.info("earlier_rename_located", target=str(target))

    async def settle_renames(self) -> None:
        """Finish or forget renames that a crash (or a failing mount) interrupted between intent and record,
        then finish the look at renamed folders that a crash interrupted."""
        for session, target in (await self.store.intake.pending_renames()).items():
            with structlog.contextvars.bound_contextvars(session=session):
                await self._attempt(("rename", Path(session)), self._settle_rename(session, target))
        for session, target in (await self.store.intake.pending_relists()).items():
            with structlog.contextvars.bound_contextvars(session=session):
                work = ("relist", Path(target))
                failure = await self._attempt(work, self._relist(session, target))
                if failure is not None and failure.rounds >= FAILED_ROUNDS:
                    await self._follow_up(self._give_up_relist(session, target, failure.problem))
                    self._forget(work)

    async def _settle_rename(self, session: str, target: str) -> None:
        outcome = await self.importer.blocking(
            rename_outcome, Path(session), Path(target), what="looking for", path=Path(session)
        )
        if outcome == "renamed":
            record = await self.store.intake.session(session)
            await self.store.intake.finish_rename(
                session,
                target,
                workstation=Path(session).parent.name,
                assets=record.assets if record else 0,
                rejected=record.rejected if record else 0,
                actor=ACTOR,
            )
            log.info("interrupted_rename_recorded", target=target)
        elif outcome == "not_renamed":
            await self.store.intake.abandon_rename(session, outcome="the rename did not happen", actor=ACTOR)
        else:
            await self.store.intake.abandon_rename(
                session, outcome=f"unclear: both or neither of {session} and {target} exist", actor=ACTOR
            )
            await self.store.intake.record_rejection(
                _session_problem(
                    session, f"an interrupted rename left both or neither of {session} and {target}: look at them"
                )
            )

    async def _relist(self, session: str, target: str) -> None:
        # What the folder held when it was planned is gone with the crash: every file is compared with the records.
        await self.importer.relist(Path(session), Path(target), None)
        log.info("interrupted_relist_finished", target=target)

    async def scan(self) -> None:
        """One pass over every workstation folder; a failure in one folder never stops the others."""
        self.stats.scans += 1
        root = Path(self.config.ndrive.root)
        for workstation in self.config.ndrive.workstations:
            try:
                sessions = await self.importer.blocking(
                    list_session_folders, root, workstation, what="listing", path=root / workstation
                )
            except TransientError as exc:
                log.warning("workstation_folder_unreadable", workstation=workstation, error=str(exc))
                continue
            for session in sessions:
                with structlog.contextvars.bound_contextvars(session=str(session)):
                    await self._consider_guarded(session, workstation)

    async def _attempt(self, work: _Work, job: Coroutine[Any, Any, None]) -> _Failure | None:
        """Run one folder's work unless it rests after failing; a call about that folder that still hangs counts
        as a failed round (no second thread is spent on it).

        Its failures stay its own unless the lane's health probe confirms a site problem (then the error goes
        up and the lane pauses). Returns None when the work succeeded (or was not tried), else what failed and
        how many rounds in a row it did; a failure makes the work rest for a growing while.
        """
        if trio.current_time() < self.resting.get(work, -math.inf):
            job.close()  # not started: no 'never awaited' warning
            return None
        if self.importer.in_flight.busy_under(work[1]):  # a hung call holds a thread: do not spend another
            job.close()
            return self._rest(
                work, self._failed(work, f"an N-Drive call about {work[1]} has not returned yet", crashed=False)
            )
        try:
            await job
        except InfrastructureError as exc:
            if not exc.confirm or await self.lanes.lane(exc.lane).confirm_down(self.health.get(exc.lane)):
                raise  # the lane pauses (in run_ndrive_watcher)
            failure = self._failed(work, f"{exc.reason} (the {exc.lane} itself answers)", crashed=False)
        except TransientError as exc:
            failure = self._failed(work, str(exc), crashed=False)
        except Exception as exc:  # a bug must cost one folder one round, never the whole intake
            log.exception("session_import_crashed")
            self.stats.crashes += 1
            failure = self._failed(work, f"{type(exc).__name__}: {exc}", crashed=True)
        else:
            self._forget(work)
            return None
        return self._rest(work, failure)

    def _rest(self, work: _Work, failure: _Failure) -> _Failure:
        """Let failed work rest for a while growing with its failed rounds."""
        rest = self.config.ndrive.scan_interval_s * 2 ** min(failure.rounds, 16)
        self.resting[work] = trio.current_time() + min(rest, REST_MAX_S)
        return failure

    def _failed(self, work: _Work, problem: str, *, crashed: bool) -> _Failure:
        rounds = self.failures[work] = self.failures.get(work, 0) + 1
        log.warning("session_round_failed", work=work[0], error=problem, rounds=rounds)
        return _Failure(problem=problem, rounds=rounds, crashed=crashed)

    def _forget(self, work: _Work) -> None:
        """The work succeeded (or was given up): its failing spell is over."""
        self.failures.pop(work, None)
        self.resting.pop(work, None)
        self.reported.discard(work)

    async def _follow_up(self, job: Awaitable[None]) -> None:
        """Tell a human (a rejection, a note): a note that cannot be written must not pause the lane unconfirmed."""
        try:
            await job
        except (InfrastructureError, TransientError) as exc:
            log.warning("failure_not_reported", error=str(exc))

    async def _consider_guarded(self, session: Path, workstation: str) -> None:
        work = ("scan", session)
        failure = await self._attempt(work, self._consider(session, workstation))
        if failure is None or failure.rounds < FAILED_ROUNDS or work in self.reported:
            return
        self.reported.add(work)
        if failure.crashed:
            # Looked at again once it changes (or the daemon restarts after a fix), not every few seconds.
            seen = self.pending.pop(session, None)
            await self._follow_up(
                self.importer.reject_folder(
                    session,
                    workstation,
                    f"this folder could not be imported because of an unexpected problem ({failure.problem}). "
                    "Nothing was lost and the files were left as they are; tell the data manager.",
                )
            )
            if seen is not None:
                self.rejected[session] = seen.snapshot
            self._forget(work)
            return
        # Not the digitiser's doing (a file the mount cannot read, a disk that refuses one copy): the folder is
        # tried again after a growing rest; the rejection is resolved once it is imported.
        await self.store.intake.record_rejection(
            _session_problem(
                str(session),
                f"this folder failed {failure.rounds} rounds in a row and is tried again now and then: "
                f"{failure.problem}",
            )
        )

    async def _give_up_relist(self, session: str, target: str, problem: str) -> None:
        """The renamed folder cannot be looked at again: the data manager is told; files in it wait there."""
        await self.store.intake.finish_relist(session, actor=ACTOR, outcome=f"given up: {problem}")
        await self.store.intake.record_rejection(
            _session_problem(
                session,
                f"{target} could not be looked at again for files that arrived during its rename ({problem}): "
                "look there for files without a note and upload them again in a new session folder",
                name="(renamed folder)",
            )
        )

    async def _consider(self, session: Path, workstation: str) -> None:
        snapshot = relevant(await self.importer.blocking(snapshot_session, session, what="listing", path=session))
        if self.rejected.get(session) == snapshot:
            return  # rejected as a whole and unchanged since: nothing to do until the digitiser changes it
        now = trio.current_time()
        seen = self.pending.get(session)
        if seen is None or seen.snapshot != snapshot:
            self.pending[session] = _Pending(snapshot, now)
            return
        if now - seen.stable_since < self.config.ndrive.settle_s:
            return
        done = await self.importer.import_session(session, workstation, snapshot)
        if done:
            del self.pending[session]
            record = await self.store.intake.session(str(session))
            if record is not None and record.status == "rejected":
                self.rejected[session] = snapshot
        else:
            self.stats.late_changes += 1
            latest = relevant(await self.importer.blocking(snapshot_session, session, what="listing", path=session))
            self.pending[session] = _Pending(latest, now)


def _session_problem(session: str, reason: str, *, name: str = "(session folder)") -> Rejection:
    """A problem of a whole session folder, for the data manager (``integration status``)."""
    return Rejection(session=session, name=name, guid=None, reason=reason, at=time.time(), kind="session")


async def ndrive_health_probe(config: Config, limiter: trio.CapacityLimiter) -> None:
    """The intake lane's probe: the N-Drive root and workstation folders answer (within the I/O timeout)."""
    root = Path(config.ndrive.root)
    await run_blocking(
        missing_workstations,
        root,
        config.ndrive.workstations,
        timeout_s=config.ndrive.io_timeout_s,
        what="listing",
        path=root,
        limiter=limiter,
    )
