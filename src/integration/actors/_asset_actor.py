"""The asset actor: moves one parent asset forward, ingested → syncing, while it can move.

Each step brackets its ARS side effect with an *intent* persisted before the request and cleared with the
transition that records the outcome. After a crash the intent says "this may have happened": the actor asks
ARS for the asset's status instead of repeating a non-idempotent request (never a second ARS asset).

Errors are classified, never swallowed:
- infrastructure (ARS down, disk full): the ARS lane pauses, the asset goes to ``paused`` and resumes with it;
- data (ARS refuses the metadata, CRC mismatch that persists): ``quarantined`` with ARS's own words;
- anything unexpected: logged with the GUID and retried later with back-off, ``failed`` after the budget.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog
import trio

from integration.actors._lane import Lane
from integration.adapters.ars import ArsClient, build_create_body
from integration.adapters.files import crc32_of, local_size
from integration.config import Config
from integration.domain import FileKind, decode_metadata
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsRejected,
    ArsTransientError,
    DataError,
    InfrastructureError,
    StateConflict,
    TransientError,
)
from integration.state_machines import AssetState, AssetTrigger
from integration.store import AssetRecord, Store

__all__ = ["ACTOR_NAME", "DRIVABLE", "AssetDeps", "drive_asset", "fail_asset"]

log = structlog.get_logger()

ACTOR_NAME = "asset-actor"
_INTENT_CREATE = "create"
_INTENT_SYNC = "sync"
_CRC_RETRIES = 2
#: ARS blocks a GUID for 300 s after a create that failed on its side; retries wait this long at least,
#: so that the retry budget spans the whole block.
_ARS_CREATE_BLOCK_S = 60.0
#: ARS statuses that mean synchronize was accepted at some point.
_SYNC_ACCEPTED = frozenset({"ASSET_RECEIVED", "ERDA_SYNCHRONISED", "COMPLETED", "ERDA_FAILED", "ERDA_ERROR"})
#: States this actor knows how to move out of.
DRIVABLE = frozenset({AssetState.INGESTED, AssetState.CREATED_IN_ARS, AssetState.UPLOADED, AssetState.PAUSED})


class AssetDeps(msgspec.Struct, frozen=True, kw_only=True):
    """What an asset actor needs, passed explicitly."""

    store: Store
    ars: ArsClient
    lane: Lane
    config: Config
    kick_scheduler: Callable[[], None]  # wake the scheduler: a new wake-up time was stored
    clock: Callable[[], float] = time.time


async def drive_asset(guid: str, deps: AssetDeps) -> None:
    """Move ``guid`` forward until it waits (syncing), ends, or needs a human."""
    with structlog.contextvars.bound_contextvars(asset_guid=guid):
        record = await deps.store.asset(guid)
        while record is not None and record.state in DRIVABLE:
            try:
                record = await _step(record, deps)  # the row as the step's last transition wrote it
                continue
            except StateConflict as exc:  # another task moved it; look again
                log.info("asset_state_moved_elsewhere", expected=exc.expected, actual=exc.actual)
            except InfrastructureError as exc:
                await _pause(record, deps, str(exc))
            except ArsConflict as exc:
                await _quarantine(record, deps, f"ARS refused to create the asset: {exc.error_message or exc}")
            except (DataError, ArsRejected) as exc:
                await _quarantine(record, deps, f"{type(exc).__name__}: {exc}")
            except TransientError as exc:
                await _retry_later(record, deps, str(exc), at_least_s=exc.retry_after_s or 0.0)
                return
            except Exception as exc:
                log.exception("asset_step_crashed", state=record.state.value)
                await _retry_later(record, deps, f"unexpected {type(exc).__name__}: {exc}")
                return
            record = await deps.store.asset(guid)


async def _step(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    if record.state is AssetState.PAUSED:
        await deps.lane.wait_open()
        return await deps.store.transition(
            record.guid,
            AssetTrigger.RESUME,
            expected=AssetState.PAUSED,
            reason=f"{deps.lane.name} lane is back",
            actor=ACTOR_NAME,
        )
    await deps.lane.wait_open()
    if record.state is AssetState.INGESTED:
        return await _create(record, deps)
    if record.state is AssetState.CREATED_IN_ARS:
        return await _upload(record, deps)
    return await _synchronize(record, deps)


async def _create(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    store, ars = deps.store, deps.ars
    if record.intent == _INTENT_CREATE:
        status = await ars.get_status(record.guid)
        if status is not None:
            return await store.transition(
                record.guid,
                AssetTrigger.CREATE,
                expected=AssetState.INGESTED,
                reason=f"found in ARS ({status.status}) after an unconfirmed create: reconciled, not re-created",
                actor=ACTOR_NAME,
                updates={"intent": None},
            )
    raw = await store.metadata_json(record.guid)
    if raw is None:
        raise DataError(f"no metadata recorded for {record.guid}", guid=record.guid)
    files = await store.files(record.guid)
    formats = [f.record.name.rsplit(".", 1)[-1] for f in files if f.record.kind is not FileKind.METADATA]
    body = build_create_body(decode_metadata(raw), file_formats=formats)
    had_intent = record.intent == _INTENT_CREATE
    await store.update(record.guid, expected=AssetState.INGESTED, intent=_INTENT_CREATE)
    try:
        created = await ars.create_asset(body, allocation_mb=record.allocation_mb)
    except ArsConflict as exc:
        status = await ars.get_status(record.guid)
        if status is None and exc.status_code == 403:
            # "already being processed": ARS blocks the GUID for 300 s after a create that failed on its side
            # (possibly ours, a moment ago). Wait it out; the intent stays, so the next try asks first.
            raise ArsTransientError(
                "ARS still blocks the GUID after an earlier create failed on its side; trying again later",
                status_code=403,
                guid=record.guid,
                retry_after_s=_ARS_CREATE_BLOCK_S,
            ) from exc
        if status is None or not had_intent:
            raise  # someone else's asset with our GUID: a human must look
        reason = f"ARS already had it ({status.status}) after an unconfirmed create: reconciled"
    else:
        reason = f"created in ARS with {created.allocated_mb} MB allocated"
    return await store.transition(
        record.guid,
        AssetTrigger.CREATE,
        expected=AssetState.INGESTED,
        reason=reason,
        actor=ACTOR_NAME,
        updates={"intent": None, "attempts": 0},
    )


async def _upload(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    files = await deps.store.files(record.guid)
    for stored in files:
        if stored.uploaded or stored.record.kind is FileKind.METADATA:
            continue
        await _upload_one(record, deps, stored.record.name, stored.record.local_path, stored.record.crc32)
    return await deps.store.transition(
        record.guid,
        AssetTrigger.UPLOAD,
        expected=AssetState.CREATED_IN_ARS,
        reason=f"{sum(1 for f in files if f.record.kind is not FileKind.METADATA)} file(s) in the ARS share",
        actor=ACTOR_NAME,
        updates={"attempts": 0},
    )


async def _upload_one(record: AssetRecord, deps: AssetDeps, name: str, local_path: str, crc: int) -> None:
    path = Path(local_path)
    for attempt in range(_CRC_RETRIES + 1):
        size = await trio.to_thread.run_sync(local_size, path)
        try:
            await deps.ars.upload_file(
                institution=record.institution,
                collection=record.collection,
                guid=record.guid,
                name=name,
                path=path,
                crc32=crc,
                size=size,
            )
        except ArsCrcMismatch as exc:
            local = await trio.to_thread.run_sync(crc32_of, path)
            if local.crc32 != crc:
                raise DataError(
                    f"local copy {local_path} changed since intake (CRC-32 {local.crc32} != {crc})", guid=record.guid
                ) from exc
            log.warning("ars_crc_mismatch", file=name, attempt=attempt + 1)
            continue
        await deps.store.mark_uploaded(record.guid, name)
        return
    raise DataError(f"ARS reported a CRC-32 mismatch for {name} {_CRC_RETRIES + 1} times", guid=record.guid)


async def _synchronize(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    store, ars = deps.store, deps.ars
    already = False
    if record.intent == _INTENT_SYNC:
        status = await ars.get_status(record.guid)
        already = status is not None and status.status in _SYNC_ACCEPTED and not status.is_sync_failed
    if not already:
        await store.update(record.guid, expected=AssetState.UPLOADED, intent=_INTENT_SYNC)
        try:
            await ars.synchronize(record.guid, workstation=record.workstation, pipeline=record.pipeline)
        except ArsRejected as exc:
            status = await ars.get_status(record.guid)
            if status is None or status.status not in _SYNC_ACCEPTED or status.is_sync_failed:
                raise
            log.info("synchronize_already_accepted", status=status.status, ars_said=str(exc))
    now = deps.clock()
    synced = await store.transition(
        record.guid,
        AssetTrigger.START_SYNC,
        expected=AssetState.UPLOADED,
        reason="synchronize accepted; waiting for ERDA",
        actor=ACTOR_NAME,
        updates={"intent": None, "next_wake": now + deps.config.ars.sync_poll_initial_s},
    )
    deps.kick_scheduler()
    return synced


async def _pause(record: AssetRecord, deps: AssetDeps, reason: str) -> None:
    await deps.lane.pause(reason)
    if record.state is AssetState.PAUSED:
        return
    await deps.store.transition(record.guid, AssetTrigger.PAUSE, expected=record.state, reason=reason, actor=ACTOR_NAME)


async def _quarantine(record: AssetRecord, deps: AssetDeps, reason: str) -> None:
    log.warning("asset_quarantined", reason=reason)
    await deps.store.transition(
        record.guid,
        AssetTrigger.QUARANTINE,
        expected=record.state,
        reason=reason,
        actor=ACTOR_NAME,
        updates={"intent": None, "next_wake": None},
    )


async def fail_asset(record: AssetRecord, deps: AssetDeps, reason: str, *, actor: str) -> None:
    """Move the asset to ``failed`` with ``reason`` (a human must look); clears its wake-up."""
    log.error("asset_failed", reason=reason)
    await deps.store.transition(
        record.guid, AssetTrigger.FAIL, expected=record.state, reason=reason, actor=actor, updates={"next_wake": None}
    )


async def _retry_later(record: AssetRecord, deps: AssetDeps, reason: str, *, at_least_s: float = 0.0) -> None:
    """Schedule another try with capped exponential back-off, or fail the asset once the budget is spent."""
    retry = deps.config.retry
    attempts = record.attempts + 1
    if attempts > retry.attempts:
        await fail_asset(record, deps, f"gave up after {record.attempts} attempts: {reason}", actor=ACTOR_NAME)
        return
    backoff = min(retry.max_s, retry.initial_s * math.pow(2, attempts - 1)) + random.uniform(0, retry.jitter_s)
    delay = max(at_least_s, backoff)
    log.warning("asset_retry_scheduled", attempt=attempts, delay_s=round(delay, 2), reason=reason)
    await deps.store.update(record.guid, expected=record.state, attempts=attempts, next_wake=deps.clock() + delay)
    deps.kick_scheduler()
