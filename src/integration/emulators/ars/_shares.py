"""File-proxy shares: opening (on create and createShare), closing, allocation and synchronize (spec §4.1).

A share is the one writeable folder of an asset. Opening one copies the asset's ERDA files into it, and each
parent's ERDA files into ``parents/{parent_guid}/``. Allocation outcomes travel inside an HttpInfo body.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from integration.emulators.ars._errors import bad_request, fp_forbidden, server_error
from integration.emulators.ars._model import Core, FileRow, Share

__all__ = [
    "ALLOCATION_HTTP",
    "MB",
    "Allocation",
    "change_allocation",
    "create_share",
    "delete_share",
    "drop_share",
    "http_info",
    "open_share",
    "share_would_open",
    "synchronize",
]

_T = TypeVar("_T")

MB = 1_000_000
"""The file proxy's megabyte (decimal)."""

ALLOCATION_HTTP = {
    "SUCCESS": 200,
    "BAD_REQUEST": 400,
    "DISK_FULL": 403,
    "SHARE_NOT_FOUND": 404,
    "UNKNOWN_ERROR": 500,
    "INTERNAL_ERROR": 500,
    "UPSTREAM_ERROR": 503,
}
"""``HttpAllocationStatus`` → HTTP status (spec §5.6)."""


class Allocation(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an allocation request: status, text, what was allocated."""

    status: str
    text: str | None = None
    allocated_mb: int = 0
    parent_bytes: int = 0


class _MinimalAsset(msgspec.Struct, kw_only=True):
    asset_guid: str | None = None
    parent_guids: list[str] | None = None
    institution: str | None = None
    collection: str | None = None


class _CreationObj(msgspec.Struct, kw_only=True):
    assets: list[_MinimalAsset] | None = None
    users: list[str] | None = None
    allocation_mb: int | None = None


class _ChangeAllocation(msgspec.Struct, kw_only=True):
    asset_guid: str | None = None
    new_allocation_mb: int = 0


def http_info(core: Core, guid: str, host: str, outcome: Allocation, *, fp: bool) -> dict[str, Any]:
    """``HttpInfo``: the ARS variant, or the file-proxy one (``fp``) with two more fields.

    ``remaining_storage_mb`` is 0 while the ``disk_full`` fault is on, so a client can tell a full disk from an
    allocation that is merely bigger than what is left (that one reports the true remainder).
    """
    share = core.shares.get(guid)
    path = None
    if outcome.status == "SUCCESS" and share is not None:
        path = f"/assetfiles/{share.institution}/{share.collection}/{guid}/"
    info: dict[str, Any] = {
        "path": path,
        "hostname": core.settings.share_node_host or host,
        "total_storage_mb": core.settings.total_storage_mb,
        "cache_storage_mb": core.settings.cache_storage_mb,
        "remaining_storage_mb": 0 if core.faults.disk_full else core.remaining_mb,
        "allocated_storage_mb": outcome.allocated_mb,
        "allocation_status_text": outcome.text,
        "http_allocation_status": outcome.status,
    }
    if fp:
        info["all_allocated_storage_mb"] = core.allocated_mb
        info["parent_size_mb"] = -(-outcome.parent_bytes // MB)
    return info


def _synced_copy(row: FileRow, rel: str, file_id: int) -> FileRow:
    return msgspec.structs.replace(row, rel=rel, file_id=file_id, delete_after_sync=False)


def _parent_rows(core: Core, parents: list[str]) -> list[tuple[str, str, FileRow]]:
    """(parent, rel, row) of every ERDA file of every parent; 500 if a parent has none (the file proxy throws)."""
    found: list[tuple[str, str, FileRow]] = []
    for parent in parents:
        entry = core.assets.get(parent)
        if entry is None or not entry.erda_files:
            raise server_error(f"Parent {parent} has no files in ERDA")
        found.extend((parent, rel, row) for rel, row in entry.erda_files.items())
    return found


def _check_allocation(core: Core, guid: str, allocation_mb: int, parent_bytes: int) -> Allocation:
    """The allocation check of createShare: the ERDA files must fit, and so must the allocation on the disk."""
    entry = core.assets.get(guid)
    own_bytes = sum(row.size_bytes for row in entry.erda_files.values()) if entry else 0
    if own_bytes + parent_bytes > allocation_mb * MB:
        text = "Total size of existing asset files (and parent folder), exceeds requested allocation"
        return Allocation(status="BAD_REQUEST", text=text)
    if core.faults.disk_full or allocation_mb > core.remaining_mb:
        return Allocation(status="DISK_FULL")
    return Allocation(status="SUCCESS", allocated_mb=allocation_mb, parent_bytes=parent_bytes)


def share_would_open(core: Core, guid: str, allocation_mb: int, parents: list[str]) -> bool:
    """Whether :func:`open_share` would succeed now; raises what it would raise."""
    parent_bytes = sum(row.size_bytes for _, _, row in _parent_rows(core, parents))
    return _check_allocation(core, guid, allocation_mb, parent_bytes).status == "SUCCESS"


def open_share(
    core: Core, guid: str, institution: str, collection: str, allocation_mb: int, parents: list[str]
) -> Allocation:
    """Open the share of ``guid`` with its own and its parents' ERDA files; nothing is stored on failure.

    Raises a 500 if a parent has no files in ERDA (the file proxy throws).
    """
    parent_rows = _parent_rows(core, parents)
    outcome = _check_allocation(core, guid, allocation_mb, sum(row.size_bytes for _, _, row in parent_rows))
    if outcome.status != "SUCCESS":
        return outcome
    entry = core.assets.get(guid)
    own = entry.erda_files if entry else {}
    share = Share(guid=guid, institution=institution, collection=collection, allocation_mb=allocation_mb)
    share.parent_bytes = outcome.parent_bytes
    share_dir = core.storage.share_dir(institution, collection, guid)
    share_dir.mkdir(parents=True, exist_ok=True)
    core.storage.copy_files(core.storage.erda_dir(institution, collection, guid), share_dir, list(own))
    share.files = {rel: _synced_copy(row, rel, row.file_id) for rel, row in own.items()}
    for parent, rel, row in parent_rows:
        pinst, pcoll = core.assets[parent].record["institution"], core.assets[parent].record["collection"]
        core.storage.copy_files(core.storage.erda_dir(pinst, pcoll, parent), share_dir / "parents" / parent, [rel])
        share.files[f"parents/{parent}/{rel}"] = _synced_copy(row, f"parents/{parent}/{rel}", core.next_file_id())
    core.shares[guid] = share
    core.allocated_mb += allocation_mb
    return outcome


def drop_share(core: Core, share: Share) -> None:
    """Forget ``share``, free its allocation and delete its folder."""
    del core.shares[share.guid]
    core.queue.pop(share.guid, None)
    core.allocated_mb -= share.allocation_mb
    core.storage.remove(core.storage.share_dir(share.institution, share.collection, share.guid))


def _decode(body: bytes, kind: type[_T]) -> _T:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise bad_request(str(exc)) from exc


def create_share(core: Core, guid: str, body: bytes) -> Allocation:
    """``POST /shares/assets/{guid}/createShare``: re-open a share for an existing asset (validation §4.1)."""
    obj = _decode(body, _CreationObj)
    if not obj.users or not obj.assets:
        raise bad_request("You have to provide users and an asset in this call")
    if len(obj.assets) != 1:
        raise fp_forbidden("You may only checkout one asset using this API")
    wanted = obj.assets[0]
    if wanted.asset_guid != guid:
        raise bad_request("Asset guid in query param doesnt match the one in the provided asset")
    if obj.allocation_mb is None or obj.allocation_mb <= 0:
        raise bad_request("Allocation must be a positive integer")
    if core.blocked(core.share_creating, guid):
        raise bad_request(f"A share with guid {guid} is already in the process of creation")
    core.share_creating[guid] = core.clock() + core.settings.share_dedup_s
    entry = core.assets.get(guid)
    if entry is None:
        raise fp_forbidden(f"Asset [{guid}] was not found")
    record = entry.record
    if record["asset_locked"]:
        raise fp_forbidden("Asset is locked")
    for field in ("institution", "collection"):
        if getattr(wanted, field) not in (None, record[field]):
            raise fp_forbidden(
                f"{field.capitalize()} in creation object should match {field} of asset with supplied guid "
                "or be set to null"
            )
    if guid in core.shares:
        raise fp_forbidden("Asset is already checked out")
    if wanted.parent_guids is not None and set(wanted.parent_guids) != set(record["parent_guids"]):
        raise fp_forbidden("Provided parent is different than the actual parent of the asset")
    outcome = open_share(
        core, guid, record["institution"], record["collection"], obj.allocation_mb, record["parent_guids"]
    )
    del core.share_creating[guid]
    return outcome


def delete_share(core: Core, guid: str) -> Allocation:
    """``DELETE /shares/assets/{guid}/deleteShare``: discard the share; ERDA and the status stay as they are."""
    share = core.shares.get(guid)
    if share is None:
        return Allocation(status="SHARE_NOT_FOUND", text="No share found")
    if share.state == "QUEUED" and share.attempts < core.settings.max_erda_attempts:
        return Allocation(status="BAD_REQUEST", text="Share is synchronizing", allocated_mb=share.allocation_mb)
    for row in core.assets[guid].erda_files.values():
        row.delete_after_sync = False
    drop_share(core, share)
    return Allocation(status="SUCCESS", text="Share deleted")


def change_allocation(core: Core, guid: str, body: bytes) -> Allocation:
    """``POST /shares/assets/{guid}/changeAllocation``: resize the open share (always answered 200)."""
    new_mb = _decode(body, _ChangeAllocation).new_allocation_mb
    share = core.shares.get(guid)
    if share is None:
        return Allocation(status="BAD_REQUEST", text="Failed to allocate storage, no writeable directory found")
    if share.used_bytes > new_mb * MB:
        text = "Size of files in share is greater than the new value"
        return Allocation(status="BAD_REQUEST", text=text, allocated_mb=share.allocation_mb)
    growth = new_mb - share.allocation_mb
    if growth > 0 and (core.faults.disk_full or growth > core.remaining_mb):
        text = "Cannot allocate more storage"
        return Allocation(status="DISK_FULL", text=text, allocated_mb=share.allocation_mb)
    core.allocated_mb += growth
    share.allocation_mb = new_mb
    return Allocation(status="SUCCESS", allocated_mb=new_mb, parent_bytes=share.parent_bytes)


def synchronize(core: Core, guid: str) -> None:
    """``POST /shares/assets/{guid}/synchronize``: queue the share for ERDA; status ``ASSET_RECEIVED``."""
    share = core.shares.get(guid)
    if share is None:
        raise bad_request("No writeable share for asset found")
    share.state = "QUEUED"
    share.attempts = 0
    core.queue[guid] = None
    core.set_status(guid, "ASSET_RECEIVED")
    core.counters.syncs_requested += 1
