"""The processing steps of the asset actor: synced → share_open → on_hpc → processing → processed → finalized.

- ``synced``: within the lane-wide limits (open-share megabytes, assets on the HPC), re-open the asset's share
  in ARS (intent-bracketed: after a lost answer the status is asked, never a second share);
- ``share_open`` / ``on_hpc`` / ``processing``: plan the pipeline's jobs, reconcile them with the executor (the
  watchdog), retry or give up, apply each done job's result (a device target cancels the waiting jobs, the
  derivatives job registers child assets), move the derivatives on, hand out the next group; ``on_hpc`` once the
  asset loader is done, ``processing`` once a later group is handed out, ``processed`` once every job is done,
  every derivative is synced or failed, and the results are in ARS (one full-record update);
- ``processed``: finalising (_finalise.py).

A step that has nothing to do raises :class:`Parked` with the time to look again; a callback or a job's exit
wakes the asset sooner.
"""

from __future__ import annotations

import math

import msgspec
import structlog

from integration.actors._deps import AssetDeps
from integration.actors._derivative_steps import advance_derivatives, register_derivatives
from integration.actors._finalise import finalise
from integration.actors._jobs_driver import (
    ACTOR,
    INTERRUPTED,
    advance_jobs,
    cancel_waiting,
    current_group,
    restart_failed,
    submit_next,
)
from integration.actors._mos import link_mos
from integration.actors._parked import Parked
from integration.actors._results import collect_results, push_results
from integration.domain import BarcodeView, DerivativesView
from integration.errors import ArsConflict, AssetWaits, IntegrationError
from integration.state_machines import (
    JOB_ACTIVE_STATES,
    AssetState,
    AssetTrigger,
    DerivativeState,
    DerivativeTrigger,
    JobState,
    JobTrigger,
)
from integration.store import AssetRecord, DerivativeRecord, JobRecord

__all__ = ["ON_HPC_STATES", "OPEN_SHARE", "PROCESSING_STATES", "abandon_processing", "processing_step"]

log = structlog.get_logger()

OPEN_SHARE = "open_share"
#: States whose asset holds a re-opened share (counted against the lane-wide limits).
ON_HPC_STATES = (AssetState.SHARE_OPEN, AssetState.ON_HPC, AssetState.PROCESSING, AssetState.PROCESSED)
PROCESSING_STATES = frozenset({AssetState.SYNCED, *ON_HPC_STATES})
_ROOM_CHECK_S = 10.0
_UNSETTLED = (DerivativeState.REGISTERED, DerivativeState.CREATED_IN_ARS, DerivativeState.UPLOADED,
              DerivativeState.SYNCING)  # fmt: skip


async def processing_step(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    if record.state is AssetState.SYNCED:
        return await _open_share(record, deps)
    if record.state is AssetState.PROCESSED:
        return await finalise(record, deps)
    return await _process(record, deps)


async def _open_share(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    store, ars, limits = deps.store, deps.ars, deps.config.processing
    if deps.executor is None:
        raise Parked(math.inf, 'processing is off ([executor] kind = "none"): it stays synced')  # no wake-up
    had_intent = record.has_intent(OPEN_SHARE)
    if not had_intent:
        count, megabytes = await store.assets.load(ON_HPC_STATES)
        if count >= limits.max_assets_on_hpc or (count and megabytes + record.allocation_mb > limits.max_open_share_mb):
            raise Parked(
                deps.clock() + _ROOM_CHECK_S,
                f"waits for room on the HPC: {count} assets with {megabytes} MB of open shares "
                f"(limits {limits.max_assets_on_hpc} assets, {limits.max_open_share_mb} MB)",
            )
        await restart_failed(record, deps, "processing again (the asset was retried)")
    else:
        status = await ars.get_status(record.guid)
        if status is not None and status.share_allocation_mb is not None:
            return await _share_opened(record, deps, "its share was open already (our earlier request went through)")
    record = await store.assets.open_intent(record.guid, OPEN_SHARE, expected=AssetState.SYNCED, actor=ACTOR)
    try:
        share = await ars.open_share(record.guid, institution=record.institution, collection=record.collection,
                                     allocation_mb=record.allocation_mb)  # fmt: skip
    except ArsConflict as exc:
        if exc.kind != "checked_out":
            raise
        if not had_intent:  # not our request: someone else works on the asset (never taken, never discarded)
            await store.assets.settle_intent(record.guid, OPEN_SHARE, "refused: a share is open already", actor=ACTOR)
            raise AssetWaits(
                "its share is open already and not by us (someone is working on the asset in ARS): waiting until "
                "it is closed",
                guid=record.guid,
            ) from exc
        return await _share_opened(record, deps, "its share was open already (ours: our earlier request)")
    return await _share_opened(record, deps, f"share re-opened with {share.allocated_mb} MB")


async def _share_opened(record: AssetRecord, deps: AssetDeps, reason: str) -> AssetRecord:
    moved = await deps.store.assets.transition(record.guid, AssetTrigger.OPEN_SHARE, expected=AssetState.SYNCED,
                                               reason=reason, actor=ACTOR, settle=(OPEN_SHARE, reason))  # fmt: skip
    log.info("share_reopened", reason=reason)
    return moved


async def _process(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    view = await advance_jobs(record, deps)
    applied_before = {j.job for j in view.jobs if j.applied}
    jobs = await _apply(record, view.jobs, deps)
    progressed = {j.job for j in jobs if j.applied} != applied_before  # a job's result arrived: real progress
    upload_done = all(j.state in (JobState.DONE, JobState.CANCELLED) for j in jobs if j.module == "derivative_upload")
    next_look = min(view.next_look, await advance_derivatives(record, deps, upload_done=upload_done))
    children = await deps.store.derivatives.of_parent(record.guid)
    if not _held_back(jobs, children):
        jobs = await submit_next(jobs, deps)
    group = current_group(jobs)
    if record.state is AssetState.SHARE_OPEN and (group is None or group > 0):
        return await _move(record, deps, AssetTrigger.SEND_TO_HPC, "the asset loader has its files")
    if record.state is AssetState.ON_HPC and (group is None or _handed_out(jobs, group)):
        return await _move(record, deps, AssetTrigger.START_PROCESSING, "its processing jobs are handed out")
    if record.state is AssetState.PROCESSING and group is None:
        unsettled = [c for c in children if c.state in _UNSETTLED]
        if not unsettled:
            results = await collect_results(record, jobs, deps)
            summary = await push_results(record, results, deps)
            return await _move(record, deps, AssetTrigger.FINISH_PROCESSING, f"all jobs done; in ARS: {summary}")
        raise Parked(next_look, f"{len(unsettled)} derivative(s) on their way to ERDA", progressed=progressed)
    raise Parked(next_look, _waiting_for(jobs), progressed=progressed)


def _held_back(jobs: list[JobRecord], children: list[DerivativeRecord]) -> bool:
    """Whether the next group must wait: the upload job needs every derivative created in ARS, and the clean-up
    (which deletes the node's copies of the derivatives) every derivative in ERDA or given up."""
    group = current_group(jobs)
    if any(c.state is DerivativeState.REGISTERED for c in children):
        return True
    next_modules = {j.module for j in jobs if j.group == group and j.state is JobState.WAITING}
    return "cleanup" in next_modules and any(c.state in _UNSETTLED for c in children)


async def abandon_processing(guid: str, deps: AssetDeps) -> None:
    """Before a processing asset is failed: stop its jobs in flight (failed, not cancelled: an operator's retry
    runs them again), close its re-opened share and its unfinished derivatives' shares, so it holds nothing
    while it waits for a human. Best effort: each failure is logged; a retry starts from ARS's state."""
    for job in await deps.store.jobs.of_asset(guid):
        if job.state in JOB_ACTIVE_STATES or job.state is JobState.LOST:  # a lost one may still report
            try:
                if deps.executor is not None:
                    await deps.executor.cancel(job.key)
                reason = f"{INTERRUPTED} the asset failed: this attempt was stopped"
                await deps.store.jobs.transition(
                    guid, job.job, JobTrigger.FAIL, attempt=job.attempt, actor=ACTOR, reason=reason
                )
            except IntegrationError as exc:
                log.warning("job_not_cancelled", job_key=job.key, error=str(exc))
    for child in await deps.store.derivatives.of_parent(guid):
        if child.state in _UNSETTLED:
            try:
                if child.state is not DerivativeState.REGISTERED:
                    await deps.ars.delete_share(child.guid)
                await deps.store.derivatives.transition(child.guid, DerivativeTrigger.FAIL, expected=child.state,
                                                        actor=ACTOR, reason="its parent failed")  # fmt: skip
            except IntegrationError as exc:
                log.warning("derivative_not_closed", derivative_guid=child.guid, error=str(exc))
    try:
        await deps.ars.delete_share(guid)
    except IntegrationError as exc:
        log.warning("share_not_closed", error=str(exc))


def _handed_out(jobs: list[JobRecord], group: int) -> bool:
    return group > 0 and any(j.group == group and j.state is not JobState.WAITING for j in jobs)


def _waiting_for(jobs: list[JobRecord]) -> str:
    busy = [f"{j.job} {j.state.value}" for j in jobs if j.state not in (JobState.DONE, JobState.CANCELLED)]
    return "waiting for jobs: " + (", ".join(busy) or "none")


async def _move(record: AssetRecord, deps: AssetDeps, trigger: AssetTrigger, reason: str) -> AssetRecord:
    return await deps.store.assets.transition(record.guid, trigger, expected=record.state, reason=reason, actor=ACTOR)


async def _apply(record: AssetRecord, jobs: list[JobRecord], deps: AssetDeps) -> list[JobRecord]:
    """Act on each done job's result once (recorded as applied with the job)."""
    changed = False
    for job in jobs:
        if job.state is not JobState.DONE or job.applied or job.result is None:
            continue
        what = "nothing to do"
        if job.module == "barcode":
            result = msgspec.json.decode(job.result, type=BarcodeView)
            what = f"barcodes {', '.join(result.barcodes) or 'none'} ({result.asset_subject or 'no subject'})"
            what += await link_mos(record, result, deps)
            if (result.asset_subject or "").strip().lower() == "device target":
                dropped = await cancel_waiting(jobs, deps, "a device target: no further processing")
                what += f"; a device target: {dropped} waiting job(s) cancelled"
        elif job.module == "crop_derivatives":
            made = msgspec.json.decode(job.result, type=DerivativesView)
            failed = await register_derivatives(record, made, deps)
            what = f"{len(made.derivatives)} derivative(s) registered" + (f", {len(failed)} failed" if failed else "")
            for reason in failed:
                await deps.store.assets.note(record.guid, f"a derivative could not be made: {reason}", actor=ACTOR,
                                             trigger="derivative_failed")  # fmt: skip
        await deps.store.jobs.mark_applied(job.guid, job.job, attempt=job.attempt, actor=ACTOR, what=what)
        changed = True
    return await deps.store.jobs.of_asset(record.guid) if changed else jobs
