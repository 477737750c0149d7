"""The N-Drive watcher: finds settled session folders and has them imported, without ever losing a file.

A session folder is imported only after its contents (names, sizes, mtimes) stayed unchanged for
``ndrive.settle_s`` (:mod:`._session_import` does the import). Failures stay in their scope:

- the N-Drive mount fails or hangs (every call has the ``ndrive.io_timeout_s`` / ``copy_timeout_s``
  timeout): the *intake* lane pauses and is probed; the local disk is full or failing: the *storage* lane;
- one session folder cannot be read: that folder waits, the others go on;
- one asset is bad: that asset is rejected with a note, its neighbours go on;
- a folder rejected as a whole is not looked at again until it changes (the digitiser fixed it);
- anything unexpected in one folder is logged and that folder waits; the watcher itself never crash-loops.

At every start (and whenever a rename may have been interrupted) it settles unfinished renames first, so
the store always knows where each session's files are on the N-Drive.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import structlog
import trio

from integration.actors._dispatcher import Dispatcher
from integration.actors._heartbeats import Heartbeats
from integration.actors._lanes import Lanes
from integration.actors._session_import import ACTOR, SessionImporter, WatcherStatistics, relevant, run_blocking
from integration.adapters.ndrive import (
    SessionSnapshot,
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
    heartbeats: Heartbeats,
    statistics: WatcherStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: every ``ndrive.scan_interval_s``, look at every workstation folder and import what settled.

    While the intake or storage lane is paused it waits for it (the lane prober probes it).
    """
    importer = SessionImporter(
        store=store,
        config=config,
        dispatcher=dispatcher,
        copy_limiter=copy_limiter,
        stats=statistics or WatcherStatistics(),
    )
    watcher = _Watcher(importer, lanes)
    task_status.started()
    while True:
        heartbeats.beat(ACTOR)
        await lanes.intake.wait_open()
        await lanes.storage.wait_open()
        try:
            await watcher.settle_renames()
            await watcher.scan()
        except InfrastructureError as exc:
            await lanes.lane(exc.lane).pause(exc.reason, probe="health", actor=ACTOR)
            continue
        await trio.sleep(config.ndrive.scan_interval_s)


class _Watcher:
    """The watcher's state between scans: which folders were seen with which snapshot since when."""

    def __init__(self, importer: SessionImporter, lanes: Lanes) -> None:
        self.importer = importer
        self.lanes = lanes
        self.config = importer.config
        self.store = importer.store
        self.stats = importer.stats
        self.pending: dict[Path, _Pending] = {}
        self.rejected: dict[Path, SessionSnapshot] = {}  # folders rejected as a whole, as they were then

    async def settle_renames(self) -> None:
        """Finish or forget renames that a crash (or a failing mount) interrupted between intent and record."""
        for session, target in (await self.store.intake.pending_renames()).items():
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
                log.info("interrupted_rename_recorded", session=session, target=target)
            elif outcome == "not_renamed":
                await self.store.intake.abandon_rename(session, outcome="the rename did not happen", actor=ACTOR)
            else:
                await self.store.intake.abandon_rename(
                    session, outcome=f"unclear: both or neither of {session} and {target} exist", actor=ACTOR
                )
                await self.store.intake.record_rejection(
                    Rejection(
                        session=session,
                        name="(session folder)",
                        guid=None,
                        reason=f"an interrupted rename left both or neither of {session} and {target}: look at them",
                        at=time.time(),
                        kind="session",
                    )
                )

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

    async def _consider_guarded(self, session: Path, workstation: str) -> None:
        try:
            await self._consider(session, workstation)
        except InfrastructureError:
            raise  # the lane pauses (in run_ndrive_watcher)
        except TransientError as exc:
            log.warning("session_scan_failed", error=str(exc))
        except Exception:  # a bug must cost one folder one round, never the whole intake
            log.exception("session_import_crashed")
            self.pending.pop(session, None)

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


async def ndrive_health_probe(config: Config) -> None:
    """The intake lane's probe: the N-Drive root and workstation folders answer (within the I/O timeout)."""
    root = Path(config.ndrive.root)
    await run_blocking(
        missing_workstations,
        root,
        config.ndrive.workstations,
        timeout_s=config.ndrive.io_timeout_s,
        what="listing",
        path=root,
    )
