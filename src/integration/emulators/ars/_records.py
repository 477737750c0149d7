"""The E3 asset JSON: the request shape, the stored record and the field-level validation (spec §3.1.1, §5).

Requests decode into :class:`AssetIn` (typed, unknown properties ignored as Jackson does); the stored record
is a plain dict with every E3 field, nulls included, so it is written back exactly as ARS would.
"""

from __future__ import annotations

from typing import Any

import msgspec

from integration.emulators.ars._errors import bad_request
from integration.emulators.ars._reference import ReferenceData

__all__ = ["AssetIn", "apply_body", "check_fields", "event", "new_record", "resolve_specimens"]


class SpecimenRef(msgspec.Struct, kw_only=True):
    """``asset_specimen[].specimen``: a specimen named by institution / collection / barcode."""

    institution: str | None = None
    collection: str | None = None
    barcode: str | None = None


class AssetSpecimenIn(msgspec.Struct, kw_only=True):
    """``asset_specimen[]``: attach an existing specimen by id or by name."""

    specimen_id: int | None = None
    asset_preparation_type: str | None = None
    specimen: SpecimenRef | None = None


class IssueIn(msgspec.Struct, kw_only=True):
    """``issues[]``."""

    issue_id: int | None = None
    category: str | None = None
    name: str | None = None
    timestamp: str | None = None
    status: str | None = None
    description: str | None = None
    notes: str | None = None
    solved: bool | None = None


class AssetIn(msgspec.Struct, kw_only=True):
    """The client-writable fields of an E3 asset; absent and null are the same."""

    asset_guid: str | None = None
    asset_pid: str | None = None
    status: str | None = None
    institution: str | None = None
    collection: str | None = None
    pipeline: str | None = None
    workstation: str | None = None
    digitiser: str | None = None
    updating_pipeline: str | None = None
    parent_guids: list[str] | None = None
    asset_specimen: list[AssetSpecimenIn] | None = None
    funding: list[str] | None = None
    asset_subject: str | None = None
    payload_type: str | None = None
    file_formats: list[str] | None = None
    asset_locked: bool | None = None
    restricted_access: list[str] | None = None
    role_restrictions: list[dict[str, Any]] | None = None
    tags: dict[str, str] | None = None
    date_asset_taken: str | None = None
    date_asset_finalised: str | None = None
    date_metadata_ingested: str | None = None
    camera_setting_control: str | None = None
    metadata_version: str | None = None
    metadata_source: str | None = None
    mos_id: str | None = None
    specify_attachment_title: str | None = None
    specify_attachment_remarks: str | None = None
    make_public: bool | None = None
    push_to_specify: bool | None = None
    complete_digitiser_list: list[str] | None = None
    issues: list[IssueIn] | None = None
    legality: dict[str, Any] | None = None
    external_publishers: list[dict[str, Any]] | None = None


_LIST_FIELDS = [
    "parent_guids",
    "asset_specimen",
    "funding",
    "file_formats",
    "restricted_access",
    "role_restrictions",
    "complete_digitiser_list",
    "issues",
    "external_publishers",
    "mime_type",
]
_FALSE_FIELDS = ["asset_locked", "make_public", "push_to_specify", "multi_specimen", "audited", "writeAccess", "synced"]
_NULL_FIELDS = [
    "asset_pid",
    "asset_guid",
    "status",
    "institution",
    "collection",
    "pipeline",
    "workstation",
    "digitiser",
    "updating_pipeline",
    "asset_subject",
    "payload_type",
    "date_asset_taken",
    "date_asset_finalised",
    "date_metadata_ingested",
    "camera_setting_control",
    "metadata_version",
    "metadata_source",
    "mos_id",
    "specify_attachment_title",
    "specify_attachment_remarks",
    "legality",
    "legality_id",
    "created_date",
    "date_metadata_updated",
    "internal_status",
    "updateUser",
    "events",
    "httpInfo",
    "error_message",
    "error_timestamp",
    "metadata_created_by",
    "metadata_updated_by",
    "asset_created_by",
    "date_asset_created_ars",
    "asset_updated_by",
    "date_asset_updated_ars",
    "asset_deleted_by",
    "date_asset_deleted_ars",
    "audited_by",
    "date_audited",
    "date_pushed_to_specify",
]
_KEEP_ON_NULL = frozenset({"asset_pid", "complete_digitiser_list", "issues", "role_restrictions"})
"""Fields that an update leaves untouched when the body has null (spec §3.1.2)."""


def _default(field: str) -> Any:
    if field in _LIST_FIELDS:
        return []
    if field == "tags":
        return {}
    return False if field in _FALSE_FIELDS else None


def new_record() -> dict[str, Any]:
    """An asset record with every field at its default."""
    return {field: _default(field) for field in (*_NULL_FIELDS, *_LIST_FIELDS, *_FALSE_FIELDS, "tags")}


def apply_body(record: dict[str, Any], body: AssetIn, specimens: list[dict[str, Any]], now: str) -> None:
    """Full replace of the writable fields of ``record`` by ``body`` (null keeps the §3.1.2 exceptions)."""
    values = msgspec.to_builtins(body)
    values["asset_specimen"] = specimens
    for field, value in values.items():
        if value is None and field in _KEEP_ON_NULL and record.get(field) is not None:
            continue
        record[field] = _default(field) if value is None else value
    if record["asset_subject"] is not None:
        record["asset_subject"] = record["asset_subject"].lower()
    record["multi_specimen"] = len(specimens) > 1
    for number, issue in enumerate(record["issues"], start=1):
        issue["issue_id"] = issue["issue_id"] or number
        issue["timestamp"] = issue["timestamp"] or now
        issue["asset_guid"] = record["asset_guid"]


def check_fields(ref: ReferenceData, body: AssetIn, *, creating: bool) -> None:
    """Step 1 of create validation (and the same checks on update); raises 400."""
    if not body.asset_guid:
        raise bad_request("asset_guid cannot be null")
    if creating and not body.asset_pid:
        raise bad_request("asset_pid cannot be null")
    if not body.status or body.status not in ref.statuses:
        raise bad_request("Status cannot be null")
    if any(parent == "" for parent in body.parent_guids or []):
        raise bad_request("Parent may not be an empty string")
    for issue in body.issues or []:
        if not issue.category:
            raise bad_request("Issue category cannot be null")
        if issue.category not in ref.issue_categories:
            raise bad_request("Issue category doesnt exists")
        if not issue.status:
            raise bad_request("Issue status cannot be null")
        if issue.solved is None:
            raise bad_request("Issue solved cannot be null")


def _find_specimen(ref: ReferenceData, body: AssetIn, item: AssetSpecimenIn) -> dict[str, Any]:
    if item.specimen_id is not None:
        found = ref.specimens_by_id.get(item.specimen_id)
        if found is None:
            raise bad_request(f"Specimen with id {item.specimen_id} doesn't exist")
        return found
    if item.specimen is None or not item.specimen.barcode:
        raise bad_request(
            "Each asset specimen must reference an existing specimen by specimen_id or by "
            "institution/collection/barcode"
        )
    institution = item.specimen.institution or body.institution or ""
    collection = item.specimen.collection or body.collection or ""
    found = ref.specimens.get((institution, collection, item.specimen.barcode))
    if found is None:
        raise bad_request(f"Specimen {institution}.{collection}.{item.specimen.barcode} doesn't exist")
    return found


def resolve_specimens(ref: ReferenceData, body: AssetIn) -> list[dict[str, Any]]:
    """The ``asset_specimen`` entries of ``body`` resolved against stored specimens; raises 400."""
    resolved: list[dict[str, Any]] = []
    for item in body.asset_specimen or []:
        specimen = _find_specimen(ref, body, item)
        prep = item.asset_preparation_type
        if prep not in specimen["preparation_types"]:
            raise bad_request(f"Specimen has no preparation type that matches asset preparation type: {prep}")
        resolved.append(
            {
                "specimen_id": specimen["specimen_id"],
                "asset_guid": body.asset_guid,
                "specimen_pid": specimen["specimen_pid"],
                "asset_specimen_id": None,
                "asset_preparation_type": prep,
                "specify_collection_object_attachment_id": None,
                "asset_detached": False,
                "specimen": specimen,
            }
        )
    return resolved


def event(name: str, user: str, now: str, pipeline: str | None, changes: list[str] | None = None) -> dict[str, Any]:
    """An ``Event`` record."""
    return {
        "user": user,
        "timestamp": now,
        "event": name,
        "pipeline": pipeline,
        "change_list": changes,
        "bulk_update_uuid": None,
    }
