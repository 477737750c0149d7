"""ARS asset deletes (spec §3.1): the soft delete, which only records it, and the hard ``deleteMetadata``.

Both are ``dassco-admin`` only. The soft delete keeps files and metadata and writes DELETE_ASSET and
DELETE_ASSET_METADATA events; the hard delete first discards the open share (as ARS does through the file
proxy's ``deleteShare``), then forgets the asset and its events. ERDA files stay where they are, as in ARS.
"""

from __future__ import annotations

from typing import Any

from integration.emulators.ars._errors import ApiError, bad_request, forbidden
from integration.emulators.ars._model import AssetEntry, Core, now_iso
from integration.emulators.ars._records import event
from integration.emulators.ars._shares import delete_share

__all__ = ["delete_asset", "delete_asset_metadata"]

_UNKNOWN = "Asset doesnt exist!"


def _entry(core: Core, guid: str) -> AssetEntry:
    entry = core.assets.get(guid)
    if entry is None:
        raise bad_request(_UNKNOWN)
    return entry


def delete_asset(core: Core, guid: str, user: str) -> None:
    """``DELETE /v1/assetmetadata/{guid}``: mark the asset deleted; 400 unknown or already deleted, 403 locked."""
    entry = _entry(core, guid)
    record = entry.record
    if record["asset_locked"]:
        raise forbidden("Asset is locked")
    if record["date_asset_deleted_ars"] is not None:
        raise bad_request("Asset is already deleted")
    now = now_iso()
    record.update(asset_deleted_by=user, date_asset_deleted_ars=now)
    entry.events.append(event("DELETE_ASSET", user, now, None))
    entry.events.append(event("DELETE_ASSET_METADATA", user, now, None))


def delete_asset_metadata(core: Core, guid: str) -> dict[str, Any]:
    """``DELETE /v1/assetmetadata/{guid}/deleteMetadata``: drop the share, then the asset; the 200 body.

    400 if the asset is unknown; 502 UPSTREAM_ERROR if the file proxy refuses to drop the share (it is
    being synchronised), and then nothing is deleted.
    """
    _entry(core, guid)
    outcome = delete_share(core, guid)
    if outcome.status not in ("SUCCESS", "SHARE_NOT_FOUND"):
        raise ApiError(502, "UPSTREAM_ERROR", f"File proxy could not delete the share: {outcome.text}")
    del core.assets[guid]
    core.in_progress.pop(guid, None)
    return {"asset_guid": guid, "status": "deleted", "message": f"Asset {guid} and its metadata were deleted"}
