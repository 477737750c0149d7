"""Finalising a processed asset, safely: close the re-opened share (``deleteShare``, never a second
``synchronize``), prove that ARS holds the original and every derivative that exists in ERDA with the CRC-32s
recorded at intake (or at creation), leave the digitiser a status record, and only then delete the local and
N-Drive copies and the emptied session folder.

Every step is idempotent and the proof is asked again on every try, so a crash between any two steps resumes
without deleting anything early (nothing is deleted before the proof) and without leaving anything behind (the
deletions are repeated until the state says ``finalized``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from integration.actors._ars_verify import check_in_erda
from integration.actors._deps import AssetDeps
from integration.actors._parked import Parked
from integration.adapters.finalise_files import remove_asset_copies, write_report
from integration.errors import DataError, NdriveUnavailable, StorageUnavailable
from integration.state_machines import AssetState, AssetTrigger, DerivativeState, DerivativeTrigger
from integration.store import AssetRecord, DerivativeRecord

__all__ = ["ACTOR", "finalise"]

T = TypeVar("T")

ACTOR = "finaliser"


async def finalise(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    ars, store = deps.ars, deps.store
    await ars.delete_share(record.guid)  # AssetWaits while ARS still syncs it; False when closed already
    files = await store.assets.files(record.guid)
    check = await check_in_erda(ars, record.guid, {f.record.name: f.record.crc32 for f in files if f.uploaded})
    if check.problems:
        raise DataError("ARS does not hold our bytes, so nothing is deleted: " + "; ".join(check.problems))
    if check.pending:
        raise Parked(deps.clock() + deps.config.ars.sync_poll_max_s, f"waiting for ERDA: {', '.join(check.pending)}")
    children = await store.derivatives.of_parent(record.guid)
    for child in children:
        if child.state is DerivativeState.FAILED or child.state is DerivativeState.FINALIZED:
            continue
        if child.state is not DerivativeState.SYNCED:
            raise Parked(
                deps.clock() + deps.config.processing.derivative_poll_s,
                f"derivative {child.guid} is {child.state.value}",
            )
        proof = await check_in_erda(ars, child.guid, {child.name: child.crc32})
        if not proof.synced:
            raise DataError(
                f"derivative {child.guid} is no longer in ERDA with our CRC-32: {proof.problems or proof.pending}"
            )
    report = _report(record, files_count=len(files), children=children)
    folder = deps.config.processing.report_dir(deps.config.storage.root, record.workstation)
    timeout = deps.config.ndrive.copy_timeout_s
    await _in_thread(lambda: write_report(folder, record.guid, report), record, "report", timeout)
    ndrive = [Path(f.ndrive_path) for f in files if f.ndrive_path]
    removed = await _in_thread(
        lambda: remove_asset_copies(local_dir=Path(record.local_dir), storage_root=Path(deps.config.storage.root),
                                    ndrive_files=ndrive),
        record, "copies", timeout,
    )  # fmt: skip
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
        reason=(f"share closed; ARS holds every file in ERDA; {removed.local_files} local and {removed.ndrive_files} "
                f"N-Drive file(s) deleted{'; session folder removed' if removed.session_folder_removed else ''}; "
                f"report in {folder}"),
        actor=ACTOR,
    )  # fmt: skip


async def _in_thread(work: Callable[[], T], record: AssetRecord, what: str, limit_s: float) -> T:
    try:
        with trio.fail_after(limit_s):
            return await trio.to_thread.run_sync(work, abandon_on_cancel=True)
    except trio.TooSlowError:
        raise NdriveUnavailable(
            f"finalising {record.guid}: the {what} did not finish in {limit_s:.0f} s", path=record.session
        ) from None
    except OSError as exc:
        raise StorageUnavailable(
            f"finalising {record.guid}: {what}: {exc}", path=record.local_dir, confirm=True
        ) from exc


def _report(record: AssetRecord, *, files_count: int, children: list[DerivativeRecord]) -> str:
    made = [c for c in children if c.state is not DerivativeState.FAILED]
    failed = [c for c in children if c.state is DerivativeState.FAILED]
    lines = [
        f"asset {record.guid}: finalized {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"workstation {record.workstation}, session {Path(record.session).name}, pipeline {record.pipeline}",
        f"{files_count} file(s) are safe in ERDA (ARS holds them with the checksums taken when they were copied in);",
        "the copies on the N-Drive and on the integration server have been deleted.",
        f"derivatives: {', '.join(c.name for c in made) or 'none'}",
    ]
    lines += [f"derivative {c.name} could not be stored: {c.reason}" for c in failed]
    return "\n".join(lines) + "\n"
