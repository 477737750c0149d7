"""The derivative child assets of one parent, moved by the parent's actor: registered from the derivatives
job's result → created in ARS with ``parent_guids`` (their own share opens) → uploaded from the node by the
derivative-upload job, checked by CRC-32 → synchronised → synced.

A derivative ARS refuses is ``failed`` with ARS's words; the parent is then marked ISSUE_WITH_MEDIA with a tag
naming it (results step), and finalising goes on with the derivatives that exist.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import msgspec
import structlog

from integration.actors._ars_verify import check_in_erda
from integration.actors._deps import AssetDeps
from integration.adapters.ars import build_create_body
from integration.domain import DerivativesView, allocation_mb, decode_metadata, size_mb
from integration.errors import ArsConflict, ArsRejected, AssetWaits, DataError, MetadataError
from integration.state_machines import DerivativeState, DerivativeTrigger
from integration.store import AssetRecord, DerivativeRecord, NewDerivative

__all__ = ["ACTOR", "advance_derivatives", "register_derivatives"]

log = structlog.get_logger()

ACTOR = "derivative-driver"
_ROOM_CHECK_S = 10.0
_IN_ARS = (DerivativeState.CREATED_IN_ARS, DerivativeState.UPLOADED, DerivativeState.SYNCING,
           DerivativeState.SYNCED)  # fmt: skip
_D, _T = DerivativeState, DerivativeTrigger


async def register_derivatives(record: AssetRecord, view: DerivativesView, deps: AssetDeps) -> list[str]:
    """Record what the derivatives job made; returns the reasons of those it could not make."""
    made = [
        NewDerivative(
            guid=item.guid,
            name=PurePosixPath(item.path).name,
            size_bytes=item.size_bytes,
            crc32=item.crc32,
            metadata_json=_metadata_json(item.metadata),
        )
        for item in view.derivatives
    ]
    await deps.store.derivatives.register(record.guid, made, actor=ACTOR)
    return list(view.failed)


def _metadata_json(metadata: dict[str, object]) -> bytes:
    return msgspec.json.encode(metadata)


async def advance_derivatives(record: AssetRecord, deps: AssetDeps, *, upload_done: bool) -> float:
    """Do each derivative's next step that is due; returns when to look again (inf: nothing to wait for)."""
    next_look = math.inf
    children = await deps.store.derivatives.of_parent(record.guid)
    registered = [c for c in children if c.state is _D.REGISTERED]
    if registered and not any(c.state in _IN_ARS for c in children):
        # all of a parent's set at once (its upload job needs them all), against other parents' only: a parent
        # never holds part of its set while waiting for room, so two parents never wait for each other
        limit = deps.config.processing.max_derivative_mb
        held = await deps.store.derivatives.open_megabytes(excluding_parent=record.guid)
        wanted = sum(size_mb(c.size_bytes) for c in registered)
        if held and held + wanted > limit:
            log.info("derivatives_wait_for_room", held_mb=held, wanted_mb=wanted, limit_mb=limit)
            registered = []
            next_look = min(next_look, deps.clock() + _ROOM_CHECK_S)
    for child in registered:
        await _create(record, child, deps)
    for child in children:
        if child.state is _D.REGISTERED:
            continue
        elif child.state is _D.CREATED_IN_ARS and upload_done:
            await _check_upload(child, deps)
        elif child.state is _D.UPLOADED:
            await _synchronize(record, child, deps)
            next_look = min(next_look, deps.clock() + deps.config.processing.derivative_poll_s)
        elif child.state is _D.SYNCING:
            check = await check_in_erda(deps.ars, child.guid, {child.name: child.crc32})
            waited = deps.clock() - child.state_since
            if check.synced:
                await _move(child, deps, _T.CONFIRM_SYNC, "in ERDA with our CRC-32")
            elif check.problems:
                await _move(child, deps, _T.FAIL, "ARS synchronised other bytes: " + "; ".join(check.problems))
            elif waited > _max_sync_wait(deps):
                await _move(child, deps, _T.FAIL, f"not in ERDA after {waited:.0f} s (ERDA failed or is stuck); the "
                            "parent goes on without it")  # fmt: skip
            else:
                status = await deps.ars.get_status(child.guid)
                if status is not None and status.is_sync_failed:  # ERDA gave up: queue it again (bounded by time)
                    try:
                        await deps.ars.synchronize(child.guid, workstation=record.workstation, pipeline=record.pipeline)
                    except ArsRejected as exc:
                        await _move(child, deps, _T.FAIL, f"ARS refused to synchronize it again: {exc}")
                next_look = min(next_look, deps.clock() + deps.config.processing.derivative_poll_s)
    return next_look


def _max_sync_wait(deps: AssetDeps) -> float:
    """How long a derivative may take to reach ERDA (re-synchronised meanwhile when ERDA fails) before it is
    given up: the parent's own stuck limit, once per allowed re-synchronisation."""
    return deps.config.ars.sync_stuck_after_s * (deps.config.ars.max_resyncs + 1)


async def _synchronize(parent: AssetRecord, child: DerivativeRecord, deps: AssetDeps) -> None:
    """Synchronize the child's share; after a crash the request may have gone through already (its share is
    closed then): asked, never failed for it."""
    try:
        await deps.ars.synchronize(child.guid, workstation=parent.workstation, pipeline=parent.pipeline)
    except ArsRejected as exc:
        status = await deps.ars.get_status(child.guid)
        if status is None or status.share_allocation_mb is not None:  # this derivative's own refusal
            await _move(child, deps, _T.FAIL, f"ARS refused to synchronize it: {exc}")
            return
        await _move(child, deps, _T.START_SYNC, f"synchronize went through before (ARS status {status.status})")
        return
    await _move(child, deps, _T.START_SYNC, "synchronize accepted")


async def _create(parent: AssetRecord, child: DerivativeRecord, deps: AssetDeps) -> None:
    try:
        doc = decode_metadata(child.metadata_json)
        extension = child.name.rsplit(".", 1)[-1]
        body = build_create_body(doc, file_formats=[extension])
    except (MetadataError, DataError) as exc:
        await _move(child, deps, _T.FAIL, f"its metadata cannot be sent to ARS: {exc}")
        return
    body["parent_guids"] = [parent.guid]
    # the parent's files appear in the child's share under parents/ and count against its allocation
    headroom = deps.config.ars
    allocation = parent.allocation_mb + allocation_mb(
        [child.size_bytes], headroom_fraction=headroom.allocation_headroom_fraction,
        headroom_min_mb=headroom.allocation_headroom_min_mb,
    )  # fmt: skip
    try:
        await deps.ars.create_asset(body, allocation_mb=allocation)
    except ArsConflict as exc:
        if exc.kind == "being_processed":
            raise AssetWaits(
                f"ARS is still creating derivative {child.guid}; checking again", guid=parent.guid
            ) from exc
        found = await deps.ars.get_asset(child.guid) if exc.kind == "exists" else None
        if found is None or parent.guid not in found.parent_guids:
            raise
    except ArsRejected as exc:
        await _move(child, deps, _T.FAIL, f"ARS refused to create it: {exc}")
        return
    await _move(child, deps, _T.CREATE, f"created in ARS under {parent.guid}, {allocation} MB allocated")


async def _check_upload(child: DerivativeRecord, deps: AssetDeps) -> None:
    check = await check_in_erda(deps.ars, child.guid, {child.name: child.crc32})
    if check.problems:
        await _move(child, deps, _T.FAIL, "the upload job finished, yet " + "; ".join(check.problems))
        return
    await _move(child, deps, _T.UPLOAD, "ARS holds its file with our CRC-32")


async def _move(child: DerivativeRecord, deps: AssetDeps, trigger: DerivativeTrigger, reason: str) -> None:
    await deps.store.derivatives.transition(child.guid, trigger, expected=child.state, actor=ACTOR, reason=reason)
    log.info("derivative_moved", derivative_guid=child.guid, trigger=trigger.value, reason=reason)
