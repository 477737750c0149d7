"""The steps of the asset actor, one per state: create in ARS, upload the files, synchronize.

Each step brackets its ARS side effect with an *intent* persisted before the request and settled with the
transition that records the outcome. An open intent means "this may have happened": the next try asks ARS
first instead of repeating a non-idempotent request, so there is never a second ARS asset. ARS's create is
the delicate one (ars-api.md §3.1.1):

- "already exists" after our own create timed out is our asset committed late: compare what ARS holds with
  ours (institution, collection, workstation, pipeline, the creating user) and take it, never quarantine it;
- "already being processed" does NOT mean it exists (ARS keeps its 300 s de-dup entry after a create it
  rolled back): check the status with back-off for ``ars.create_dedup_window_s``, then create again.
"""

from __future__ import annotations

from pathlib import Path

import structlog
import trio

from integration.actors._deps import AssetDeps
from integration.adapters.ars import ArsAsset, ArsClient, build_create_body
from integration.adapters.files import crc32_of, local_size
from integration.domain import FileKind, decode_metadata, size_mb
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsRejected,
    ArsShareClosed,
    AssetWaits,
    DataError,
    TransientError,
)
from integration.state_machines import AssetState, AssetTrigger
from integration.store import AssetRecord, Store, StoredFile, Wake

__all__ = ["ACTOR", "CREATE", "RECONCILE_FILES", "SYNC", "UPDATE_METADATA", "create_body", "find_ours", "step"]

log = structlog.get_logger()

ACTOR = "asset-actor"
CREATE = "create"
SYNC = "sync"
UPDATE_METADATA = "update_metadata"  # ARS holds older metadata of ours (a corrected re-delivery)
RECONCILE_FILES = "reconcile_files"  # ARS may hold files of an earlier delivery that are no longer ours
#: ARS statuses that mean synchronize was accepted at some point.
_SYNC_ACCEPTED = frozenset({"ASSET_RECEIVED", "ERDA_SYNCHRONISED", "COMPLETED", "ERDA_FAILED", "ERDA_ERROR"})


async def step(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    """Do the one step of ``record``'s state; returns the row as its last transition wrote it."""
    if record.state is AssetState.PAUSED:
        return await deps.store.assets.transition(
            record.guid,
            AssetTrigger.RESUME,
            expected=AssetState.PAUSED,
            reason="probing the lane it waited for" if deps.lanes.probing(record.guid) else "its lanes are open",
            actor=ACTOR,
        )
    if record.state is AssetState.INGESTED:
        return await _create(record, deps)
    if record.state is AssetState.CREATED_IN_ARS:
        return await _upload(record, deps)
    if record.state is AssetState.UPLOADED:
        return await _synchronize(record, deps)
    raise ValueError(f"an asset actor has no step for state {record.state.value}")


# -- create ------------------------------------------------------------------------------------------------


async def _create(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    store, ars, guid = deps.store, deps.ars, record.guid
    if record.in_ars or record.has_intent(CREATE):
        if await find_ours(record, ars) is not None:
            return await _created(
                record, deps, "found in ARS (ours, from an earlier attempt): reconciled, not re-created"
            )
        if (
            record.waiting_since is not None
            and deps.clock() - record.waiting_since < deps.config.ars.create_dedup_window_s
        ):
            raise AssetWaits(
                "ARS still blocks the GUID after a create that failed on its side; checking again", guid=guid
            )
    record = await store.assets.open_intent(guid, CREATE, expected=AssetState.INGESTED, actor=ACTOR)
    body = await create_body(record, deps.store)  # read after the intent: a late file is either in, or refused
    try:
        created = await ars.create_asset(body, allocation_mb=record.allocation_mb)
    except ArsConflict as exc:
        if exc.kind == "exists" and await find_ours(record, ars) is not None:
            return await _created(record, deps, "ARS already had it: our own earlier create, committed late")
        if exc.kind == "being_processed":
            if await ars.get_status(guid) is not None and await find_ours(record, ars) is not None:
                return await _created(record, deps, "ARS had it: our own create, still in progress")
            since = record.waiting_since if record.waiting_since is not None else deps.clock()
            attempts = record.attempts + 1  # each refused POST counts: a create that fails on ARS's side forever
            await store.assets.update(guid, expected=AssetState.INGESTED, waiting_since=since, attempts=attempts)
            if attempts > deps.config.retry.attempts:
                raise TransientError(
                    f"ARS answered 'already being processed' to {attempts} creates: its create of this asset keeps "
                    "failing on its side (ARS does not say why; check the metadata, e.g. asset_subject)",
                    guid=guid,
                ) from exc
            raise AssetWaits(
                "ARS blocks the GUID for up to 300 s after a create that failed on its side; "
                "checking its status until then, then creating again",
                guid=guid,
            ) from exc
        raise
    return await _created(record, deps, f"created in ARS with {created.allocated_mb} MB allocated")


async def create_body(record: AssetRecord, store: Store) -> dict[str, object]:
    """The E3 asset body of ``record`` (create, or a full-record update), from its recorded metadata and files."""
    raw = await store.assets.metadata_json(record.guid)
    if raw is None:
        raise DataError(f"no metadata recorded for {record.guid}", guid=record.guid)
    files = await store.assets.files(record.guid)
    formats = [f.record.name.rsplit(".", 1)[-1] for f in files if f.record.kind is not FileKind.METADATA]
    return build_create_body(decode_metadata(raw), file_formats=formats)


async def _created(record: AssetRecord, deps: AssetDeps, reason: str) -> AssetRecord:
    """Record ``created_in_ars`` (after bringing ARS's metadata up to date when a re-delivery changed it)."""
    if record.has_intent(UPDATE_METADATA):
        async with deps.ars_records.hold(record.guid):  # full-record writes to one asset take turns
            await deps.ars.update_asset(record.guid, await create_body(record, deps.store))
        await deps.store.assets.settle_intent(record.guid, UPDATE_METADATA, "ARS metadata replaced", actor=ACTOR)
    return await deps.store.assets.transition(
        record.guid,
        AssetTrigger.CREATE,
        expected=AssetState.INGESTED,
        reason=reason,
        actor=ACTOR,
        updates={"in_ars": True, "attempts": 0},  # the new state ends any wait (the store clears waiting_since)
        settle=(CREATE, reason),
    )


async def find_ours(record: AssetRecord, ars: ArsClient) -> ArsAsset | None:
    """What ARS holds under the asset's GUID if it is ours; None when ARS holds nothing.

    Raises :class:`DataError` (quarantine) when ARS holds a *different* asset under the GUID: another
    institution, collection, workstation or pipeline, or created by another user. While a corrected delivery's
    metadata is still to replace ARS's (an open ``update_metadata`` intent), those fields may differ on purpose:
    then only the creating user decides.
    """
    held = await ars.get_asset(record.guid)
    if held is None:
        return None
    us = await ars.username()
    compared = [("creating user", held.created_by, us)]
    if not record.has_intent(UPDATE_METADATA):
        compared += [
            ("institution", held.institution, record.institution),
            ("collection", held.collection, record.collection),
            ("workstation", held.workstation, record.workstation),
            ("pipeline", held.pipeline, record.pipeline),
        ]
    differences = [
        f"{name} is {theirs!r} in ARS, {ours!r} here" for name, theirs, ours in compared if theirs and theirs != ours
    ]
    if differences:
        raise DataError(
            f"ARS already holds another asset with the GUID {record.guid} ({'; '.join(differences)}). "
            "Nothing was sent. Check whether the GUID was reused; correct it and deliver the asset again.",
            guid=record.guid,
        )
    return held


# -- upload ------------------------------------------------------------------------------------------------


async def _upload(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    files = await deps.store.assets.files(record.guid)
    ours = [f for f in files if f.record.kind is not FileKind.METADATA]
    for stored in ours:
        if not stored.uploaded:
            await _upload_one(record, deps, stored)
    if record.has_intent(RECONCILE_FILES):
        await _drop_files_not_ours(record, deps, {f.record.name for f in ours})
    return await deps.store.assets.transition(
        record.guid,
        AssetTrigger.UPLOAD,
        expected=AssetState.CREATED_IN_ARS,
        reason=f"{len(ours)} file(s) in the ARS share with our CRC-32",
        actor=ACTOR,
        updates={"attempts": 0, "crc_mismatches": 0},
    )


async def _upload_one(record: AssetRecord, deps: AssetDeps, stored: StoredFile) -> None:
    path = Path(stored.record.local_path)
    size = await trio.to_thread.run_sync(local_size, path)

    async def put() -> None:
        await deps.ars.upload_file(
            institution=record.institution,
            collection=record.collection,
            guid=record.guid,
            name=stored.record.name,
            path=path,
            crc32=stored.record.crc32,
            size=size,
        )

    try:
        try:
            await put()
        except ArsShareClosed:
            await _open_share(record, deps)
            await put()
    except ArsCrcMismatch as exc:
        local = await trio.to_thread.run_sync(crc32_of, path)
        if local.crc32 != stored.record.crc32:
            raise DataError(
                f"the local copy {path} changed since intake (CRC-32 {local.crc32} != {stored.record.crc32}); "
                "deliver the asset again",
                guid=record.guid,
            ) from exc
        raise
    await deps.store.assets.mark_uploaded(record.guid, stored.record.name)


async def _open_share(record: AssetRecord, deps: AssetDeps) -> None:
    """Open the asset's share again (it was synced or discarded); it must hold what ARS has plus ours.

    Nothing is asked of the file proxy when a share is open already: a createShare answered "already checked
    out" blocks every createShare of the asset for 5 minutes (the file proxy's de-dup, ars-api.md §4.1).
    """
    status = await deps.ars.get_status(record.guid)
    if status is not None and status.share_allocation_mb is not None:
        if status.status == "ASSET_RECEIVED":  # the share is closed for uploads while ERDA syncs it
            raise AssetWaits("ARS is synchronising the asset; its share opens for uploads afterwards", guid=record.guid)
        return
    held_mb = sum(size_mb(f.size_bytes) for f in await deps.ars.list_files(record.guid))
    try:
        share = await deps.ars.open_share(
            record.guid,
            institution=record.institution,
            collection=record.collection,
            allocation_mb=record.allocation_mb + held_mb,
        )
    except ArsConflict as exc:
        if exc.kind != "checked_out":
            raise
        return  # a share is open already: use it
    await deps.store.assets.note(
        record.guid, f"ARS share opened again ({share.allocated_mb} MB) to upload our files", actor=ACTOR
    )


async def _drop_files_not_ours(record: AssetRecord, deps: AssetDeps, ours: set[str]) -> None:
    """Delete the files ARS still holds from an earlier delivery (ARS mirrors the share into ERDA)."""
    held = await deps.ars.list_files(record.guid)
    stale = sorted({f.name for f in held if not f.delete_after_sync} - ours)
    if stale:
        await _open_share(record, deps)
    for name in stale:
        try:
            await deps.ars.delete_file(
                institution=record.institution, collection=record.collection, guid=record.guid, name=name
            )
        except ArsRejected as exc:
            raise ArsRejected(
                f"ARS still holds {name} from an earlier delivery and refused to delete it ({exc}); ask an ARS "
                f"administrator to delete it from asset {record.guid}, then `integration retry {record.guid}`",
                status_code=exc.status_code,
                error_message=exc.error_message,
                guid=record.guid,
            ) from exc
        await deps.store.assets.note(record.guid, f"deleted {name} (an earlier delivery's file) from ARS", actor=ACTOR)
    await deps.store.assets.settle_intent(
        record.guid, RECONCILE_FILES, f"ARS holds only our files ({len(stale)} old one(s) deleted)", actor=ACTOR
    )


# -- synchronize -------------------------------------------------------------------------------------------


async def _synchronize(record: AssetRecord, deps: AssetDeps) -> AssetRecord:
    store, ars, guid = deps.store, deps.ars, record.guid
    already = False
    if record.has_intent(SYNC):
        status = await ars.get_status(guid)
        already = status is not None and status.status in _SYNC_ACCEPTED and not status.is_sync_failed
    if not already:
        await store.assets.open_intent(guid, SYNC, expected=AssetState.UPLOADED, actor=ACTOR)
        try:
            await ars.synchronize(guid, workstation=record.workstation, pipeline=record.pipeline)
        except ArsRejected as exc:
            status = await ars.get_status(guid)
            if status is not None and status.status in _SYNC_ACCEPTED and not status.is_sync_failed:
                log.info("synchronize_already_accepted", status=status.status, ars_said=str(exc))
            elif isinstance(exc, ArsShareClosed):
                return await store.assets.transition(
                    guid,
                    AssetTrigger.REUPLOAD,
                    expected=AssetState.UPLOADED,
                    reason=f"ARS has no open share and has not synchronised the asset ({exc}): upload again",
                    actor=ACTOR,
                    settle=(SYNC, f"refused: {exc}"),
                    uploaded=(),
                )
            else:
                raise
    synced = await store.assets.transition(
        guid,
        AssetTrigger.START_SYNC,
        expected=AssetState.UPLOADED,
        reason="synchronize accepted; waiting for ERDA",
        actor=ACTOR,
        updates={"attempts": 0},
        wake=Wake(kind="sync_poll", due=deps.clock() + deps.config.ars.sync_poll_initial_s, reason="ERDA sync"),
        settle=(SYNC, "accepted by ARS"),
    )
    deps.wake_poller()
    return synced
