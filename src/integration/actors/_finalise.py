"""Finalising a processed asset, safely: close the re-opened share (``deleteShare``, never a second
``synchronize``), prove that ARS holds every file of the original and every derivative that exists in ERDA with
the CRC-32s recorded at intake (or at creation), leave the digitiser a status record, and only then delete the
local and N-Drive copies and the emptied session folder.

Every step is idempotent and the proof is asked again on every try, so a crash between any two steps resumes
without deleting anything early (nothing is deleted before the proof) and without leaving anything behind (the
deletions are repeated until the state says ``finalized``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog
import trio

from integration.actors._ars_verify import check_in_erda
from integration.actors._deps import AssetDeps
from integration.actors._parked import Parked
from integration.adapters.finalise_files import remove_local_copy, remove_ndrive_copies, write_report
from integration.domain import FileKind
from integration.errors import DataError, IntegrationError, NdriveUnavailable, StorageUnavailable
from integration.state_machines import AssetState, AssetTrigger, DerivativeState, DerivativeTrigger
from integration.store import AssetRecord, DerivativeRecord, job_key

__all__ = ["ACTOR", "finalise"]

T = TypeVar("T")

ACTOR = "finaliser"

log = structlog.get_logger()


async def finalise(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    ars, store = deps.ars, deps.store
    await ars.delete_share(record.guid)  # AssetWaits while ARS still syncs it; False when closed already
    files = [f for f in await store.assets.files(record.guid) if f.record.kind is not FileKind.METADATA]
    check = await check_in_erda(ars, record.guid, {f.record.name: f.record.crc32 for f in files})
    if check.problems:
        raise DataError("ARS does not hold our bytes, so nothing is deleted: " + "; ".join(check.problems))
    if check.pending:
        raise Parked(deps.clock() + deps.config.ars.sync_poll_max_s, f"waiting for ERDA: {', '.join(check.pending)}")
    children = await store.derivatives.of_parent(record.guid)
    for child in children:
        if child.state in (DerivativeState.FAILED, DerivativeState.FINALIZED):
            continue
        proof = await check_in_erda(ars, child.guid, {child.name: child.crc32})
        if child.state is not DerivativeState.SYNCED or proof.pending:
            raise Parked(deps.clock() + deps.config.processing.derivative_poll_s,
                         f"derivative {child.guid} is not yet in ERDA")  # fmt: skip
        if proof.problems:
            raise DataError(f"derivative {child.guid} is no longer in ERDA with our CRC-32: {proof.problems}")
    config = deps.config
    folder = config.processing.report_dir(config.storage.root, record.workstation)
    limit = config.ndrive.copy_timeout_s
    report = _report(record, files_count=len(files), children=children)
    await _in_thread(lambda: write_report(folder, record.guid, report), record, "the report", limit, _storage)
    local = await _in_thread(
        lambda: remove_local_copy(Path(record.local_dir), storage_root=Path(config.storage.root)),
        record, "the local copy", limit, _storage,
    )  # fmt: skip
    every = [Path(f.ndrive_path) for f in await store.assets.files(record.guid) if f.ndrive_path]
    ndrive, folder_gone = await _in_thread(lambda: remove_ndrive_copies(every), record, "the N-Drive copies", limit,
                                           _ndrive)  # fmt: skip
    forgotten = await _forget_jobs(record, deps)
    for child in children:
        if child.state is DerivativeState.SYNCED:
            reason = f"parent {record.guid} finalized"
            await store.derivatives.transition(
                child.guid, DerivativeTrigger.FINALIZE, expected=child.state, actor=ACTOR, reason=reason
            )
    return await store.assets.transition(
        record.guid,
        AssetTrigger.FINALIZE,
        expected=AssetState.PROCESSED,
        reason=(f"share closed; ARS holds every file in ERDA; {local} local and {ndrive} N-Drive file(s) deleted"
                f"{'; session folder removed' if folder_gone else ''}; report in {folder}{forgotten}"),
        actor=ACTOR,
    )  # fmt: skip


async def _forget_jobs(record: AssetRecord, deps: AssetDeps) -> str:
    """Let the executor drop every attempt of the asset's jobs (their folders and logs): best effort, a failure
    is logged and leaves the folders for a person, never holds the asset back."""
    if deps.executor is None:
        return ""
    keys = [job_key(job.guid, job.job, n) for job in await deps.store.jobs.of_asset(record.guid)
            for n in range(1, job.attempt + 1)]  # fmt: skip
    try:
        removed = await deps.executor.forget(keys)
    except (IntegrationError, ValueError) as exc:  # ValueError: a key that cannot name a folder (never ran here)
        log.warning("job_folders_not_removed", error=str(exc))
        return ""
    return f"; {removed} job folder(s) removed" if removed else ""


def _storage(record: AssetRecord, message: str) -> IntegrationError:
    return StorageUnavailable(message, path=record.local_dir, confirm=True)


def _ndrive(record: AssetRecord, message: str) -> IntegrationError:
    return NdriveUnavailable(message, path=record.session)


async def _in_thread(
    work: Callable[[], T],
    record: AssetRecord,
    what: str,
    limit_s: float,
    failure: Callable[[AssetRecord, str], IntegrationError],
) -> T:
    """``work`` in a worker thread, bounded by ``limit_s``; a hang or an OS error is the disk's (its lane)."""
    try:
        with trio.fail_after(limit_s):
            return await trio.to_thread.run_sync(work, abandon_on_cancel=True)
    except trio.TooSlowError:
        raise failure(record, f"finalising {record.guid}: {what} did not finish in {limit_s:.0f} s") from None
    except OSError as exc:
        raise failure(record, f"finalising {record.guid}: {what}: {exc}") from exc


def _report(record: AssetRecord, *, files_count: int, children: list[DerivativeRecord]) -> str:
    made = [c for c in children if c.state is not DerivativeState.FAILED]
    failed = [c for c in children if c.state is DerivativeState.FAILED]
    lines = [
        f"asset {record.guid}: finalized {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"workstation {record.workstation}, session {Path(record.session).name}, pipeline {record.pipeline}",
        f"{files_count} file(s) are safe in ERDA (ARS holds them with the checksums taken when they were copied in);",
        "their copies on the N-Drive and on the integration server are deleted with this report.",
        f"derivatives: {', '.join(c.name for c in made) or 'none'}",
    ]
    lines += [f"derivative {c.name} could not be stored: {c.reason}" for c in failed]
    return "\n".join(lines) + "\n"
