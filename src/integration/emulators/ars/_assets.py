"""ARS asset metadata: create (validation order of spec §3.1.1), full-replace update, reads and statuses.

A create registers its de-dup entry, then commits (share opened, asset stored); the ``late_create_commit_next``
fault puts a wait between the two, which is how ARS behaves when the file proxy is slow.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import msgspec
import trio

from integration.emulators.ars._errors import ApiError, bad_request, forbidden, not_found, server_error
from integration.emulators.ars._model import AssetEntry, Core, now_iso
from integration.emulators.ars._records import (
    AssetIn,
    apply_body,
    check_fields,
    event,
    new_record,
    resolve_specimens,
)
from integration.emulators.ars._shares import ALLOCATION_HTTP, http_info, open_share, share_would_open

__all__ = [
    "create_asset",
    "decode_asset",
    "get_asset",
    "in_progress",
    "parse_query_int",
    "status_of",
    "update_asset",
]


def decode_asset(body: bytes) -> AssetIn:
    """The asset JSON of a request; 400 if it is not valid JSON of the right types."""
    try:
        return msgspec.json.decode(body, type=AssetIn)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise bad_request(str(exc)) from exc


def parse_query_int(raw: str | None) -> int | None:
    """A JAX-RS integer query parameter: None if absent, 404 if it does not convert."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise not_found() from None


def _check_references(core: Core, body: AssetIn, guid: str) -> None:
    """Step 8: pipeline, workstation, file formats, publishers, parents."""
    institution = body.institution or ""
    if not core.ref.has_pipeline(institution, body.pipeline):
        raise bad_request("Pipeline doesnt exist in this institution")
    status = core.ref.workstation_status(institution, body.workstation)
    if status is None:
        raise bad_request("Workstation does not exist")
    if status == "OUT_OF_SERVICE":
        raise forbidden("Workstation [OUT_OF_SERVICE] is marked as out of service")
    for file_format in body.file_formats or []:
        if file_format not in core.ref.file_formats:
            raise bad_request(f"{file_format} is not a valid file format")
    for publisher in body.external_publishers or []:
        if publisher.get("name") not in core.ref.publishers:
            raise bad_request(f"Publisher {publisher.get('name')} doesnt exist")
    parents = body.parent_guids or []
    if guid in parents:
        raise bad_request("Asset cannot be its own parent")
    if any(parent not in core.assets for parent in parents):
        raise bad_request("Parent doesnt exist")


def _check_create(core: Core, body: AssetIn, allocation: int | None) -> list[dict[str, Any]]:
    """Steps 1-8 of §3.1.1, first failure wins; returns the resolved specimens."""
    check_fields(core.ref, body, creating=True)
    specimens = resolve_specimens(core.ref, body)
    guid = body.asset_guid or ""
    if core.blocked(core.creating, guid):
        core.counters.duplicate_create_rejections += 1
        raise forbidden(f"Asset {guid} is already being processed")
    if guid in core.assets:
        core.counters.duplicate_create_rejections += 1
        raise bad_request(f"Asset {guid} already exists")
    if not allocation:
        raise bad_request("Allocation cannot be 0")
    core.ref.require_collection(body.institution, body.collection)
    if not body.digitiser:
        raise bad_request("digitiser cannot be null when creating asset")
    _check_references(core, body, guid)
    return specimens


def _register(core: Core, body: bytes, allocation_raw: str | None) -> tuple[AssetIn, list[dict[str, Any]], int]:
    """Validate a create and register its de-dup entry; the asset, its specimens and the allocation.

    Failures after the registration (unknown subject, negative allocation) answer 500 and leave the entry,
    so a retry within ``create_dedup_s`` gets 403.
    """
    allocation = parse_query_int(allocation_raw)
    asset = decode_asset(body)
    specimens = _check_create(core, asset, allocation)
    guid = asset.asset_guid or ""
    if "/" in guid or guid in (".", ".."):
        raise bad_request("asset_guid cannot contain '/' in the emulator")
    core.creating[guid] = core.clock() + core.settings.create_dedup_s
    if asset.asset_subject is not None and asset.asset_subject.lower() not in core.ref.subjects:
        raise server_error(f"asset_subject {asset.asset_subject} violates a foreign key constraint")
    if allocation is None or allocation < 0:
        raise server_error("File proxy rejected the allocation: Allocation must be a positive integer")
    return asset, specimens, allocation


def _commit(
    core: Core, asset: AssetIn, specimens: list[dict[str, Any]], allocation: int, user: str, host: str
) -> tuple[int, dict[str, Any]]:
    """Open the share and store the asset (the transaction of §3.1.1 step 9-10); (HTTP status, asset JSON)."""
    guid, now = asset.asset_guid or "", now_iso()
    if guid in core.assets:  # only after a late commit with create_dedup_s shorter than the wait
        raise server_error('duplicate key value violates unique constraint "asset_pkey"')
    record = new_record()
    apply_body(record, asset, specimens, now)
    institution, collection = record["institution"], record["collection"]
    outcome = open_share(core, guid, institution, collection, allocation, record["parent_guids"])
    core.creating.pop(guid, None)
    record.update(
        created_date=now,
        date_metadata_updated=now,
        internal_status="METADATA_RECEIVED",
        updateUser=user,
        metadata_created_by=user,
    )
    reply = {**record, "httpInfo": http_info(core, guid, host, outcome, fp=False)}
    if outcome.status != "SUCCESS":
        return ALLOCATION_HTTP[outcome.status], reply
    pipeline = asset.updating_pipeline or asset.pipeline
    core.assets[guid] = AssetEntry(record=record, events=[event("CREATE_ASSET_METADATA", user, now, pipeline)])
    core.set_status(guid, "METADATA_RECEIVED")
    core.counters.creates_committed += 1
    by_guid = core.counters.creates_committed_by_guid
    by_guid[guid] = by_guid.get(guid, 0) + 1
    return 200, reply


def _late_commit(core: Core, asset: AssetIn, allocation: int) -> bool:
    """Whether this create, which would succeed, is one the ``late_create_commit_next`` fault delays."""
    if core.faults.late_create_commit_next <= 0:
        return False
    if not share_would_open(core, asset.asset_guid or "", allocation, asset.parent_guids or []):
        return False
    return core.take_fault("late_create_commit_next")


async def create_asset(
    core: Core, body: bytes, allocation_raw: str | None, user: str, host: str
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/assetmetadata``: validate, open the share, store; (HTTP status, asset JSON with httpInfo).

    With the ``late_create_commit_next`` fault the create waits ``late_create_commit_s`` between registering
    its de-dup entry and committing. The wait and the commit are shielded, so the asset is stored even if the
    caller gave up: in-process an ASGI app runs in the caller's task, and the caller's timeout is delivered
    only after the commit.
    """
    core.counters.create_requests += 1
    asset, specimens, allocation = _register(core, body, allocation_raw)
    if not _late_commit(core, asset, allocation):
        return _commit(core, asset, specimens, allocation, user, host)
    with trio.CancelScope(shield=True):
        await trio.sleep(core.faults.late_create_commit_s)
        reply = _commit(core, asset, specimens, allocation, user, host)
    await trio.lowlevel.checkpoint()
    return reply


def update_asset(core: Core, guid: str, body: bytes, user: str) -> dict[str, Any]:
    """``PUT /v1/assetmetadata/{guid}``: full replace of the writable fields (spec §3.1.2)."""
    asset = decode_asset(body)
    if asset.asset_guid != guid:
        raise bad_request("asset_guid in URL must match asset_guid in POST-message")
    entry = core.assets.get(guid)
    if entry is None:
        raise bad_request(f"Asset {guid} does not exist")
    check_fields(core.ref, asset, creating=False)
    specimens = resolve_specimens(core.ref, asset)
    core.ref.require_collection(asset.institution, asset.collection)
    _check_references(core, asset, guid)
    record = entry.record
    if record["internal_status"] == "SPECIFY_SYNC_SCHEDULED":
        raise forbidden("Asset is synchronising to specify, please await completion")
    if record["asset_locked"] and not asset.asset_locked:
        raise forbidden("Cannot unlock using updateAsset API, use dedicated API for unlocking")
    now = now_iso()
    if core.take_fault("foreign_update_before_next_put"):
        _curator_update(entry, _shifted(now, -1))
    earlier = copy.deepcopy(record) if core.take_fault("foreign_update_after_next_put") else None
    apply_body(record, asset, specimens, now)
    record.update(date_metadata_updated=now, updateUser=user, metadata_updated_by=user)
    entry.events.append(event("UPDATE_ASSET_METADATA", user, now, asset.updating_pipeline))
    if earlier is not None:
        record.clear()
        record.update(earlier)
        _curator_update(entry, _shifted(now, +1))
    return record


def _shifted(instant: str, milliseconds: int) -> str:
    """``instant`` (as :func:`now_iso` writes it) moved by ``milliseconds``: a curator's update just before or
    just after ours, distinct in ARS's event times."""
    moved = datetime.fromisoformat(instant) + timedelta(milliseconds=milliseconds)
    return moved.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _curator_update(entry: AssetEntry, now: str) -> None:
    """Someone else's full-record update of ``entry``: the tag ``curator_note`` set, an event by ``curator``."""
    entry.record["tags"] = {**(entry.record.get("tags") or {}), "curator_note": "set by a curator"}
    entry.record.update(date_metadata_updated=now, updateUser="curator", metadata_updated_by="curator")
    entry.events.append(event("UPDATE_ASSET_METADATA", "curator", now, None))


def get_asset(core: Core, guid: str) -> dict[str, Any] | None:
    """``GET /v1/assetmetadata/{guid}``: the record with its events, or None (answered 204)."""
    entry = core.assets.get(guid)
    if entry is None:
        return None
    return {**entry.record, "events": entry.events}


def status_of(core: Core, guid: str) -> dict[str, Any]:
    """``GET /v1/assets/status/{guid}``; 404 with an empty body if unknown."""
    if guid not in core.assets:
        raise ApiError(404, "NOT_FOUND", None, bare=True)
    return core.status_info(guid)


def in_progress(core: Core, only_failed: bool) -> list[dict[str, Any]]:
    """``GET /v1/assets/inprogress``: assets in progress, plus a synthetic entry per other open share."""
    failed = ("ERDA_FAILED", "SPECIFY_SYNC_FAILED")
    listed = [core.status_info(guid, with_parents=False) for guid in core.in_progress]
    if only_failed:
        return [info for info in listed if info["status"] in failed]
    for guid in core.shares:
        if guid not in core.in_progress:
            listed.append({**core.status_info(guid, with_parents=False), "status": "ERDA_SYNCHRONISED"})
    return listed
