"""The N-Drive metadata JSON (template v2_1_0, tolerating v3.0.2) as an ARS E3 create body.

ARS silently drops JSON properties it does not know (ars-api.md §0, §12.4), so every name here is an E3
name; ``specimens``/``parent_guid``/``subject`` would be lost without an error. Specimens are attached
later (they must exist in ARS first), hence ``asset_specimen: []``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integration.domain import MetadataDocument
from integration.errors import MetadataError

__all__ = ["build_create_body", "file_format_names"]

#: Spellings on the N-Drive -> ARS file-format list names (seeded: TIF, JPEG, RAW, RAF, CR3, DNG, TXT).
_FORMAT_ALIASES = {"TIFF": "TIF", "JPG": "JPEG"}
#: v3.0.2 fields that E3 accepts under the same name and type, carried when present.
_PASS_THROUGH: dict[str, type] = {"camera_setting_control": str, "metadata_source": str}


def build_create_body(doc: MetadataDocument, *, file_formats: list[str]) -> dict[str, Any]:
    """The body of ``POST /ars/api/v1/assetmetadata`` for ``doc``; pure.

    ``file_formats`` are the extensions of the asset's files (``["tif", "dng"]``); when empty the metadata's
    ``file_format`` is used. Raises :class:`MetadataError` when ``date_asset_taken`` is not an ISO-8601
    time with a UTC offset (ARS stores an instant; guessing the zone would misdate the asset).
    """
    meta = doc.metadata
    body: dict[str, Any] = {
        "asset_guid": meta.asset_guid,
        "asset_pid": meta.asset_pid or f"urn:dassco:{meta.asset_guid}",
        "status": _status(meta.status),
        "institution": meta.institution,
        "collection": meta.collection,
        "pipeline": meta.pipeline_name,
        "workstation": meta.workstation_name,
        "digitiser": meta.digitiser,
        "parent_guids": _strings(meta.parent_guid),
        "funding": _strings(meta.funding),
        "payload_type": _payload_type(meta.payload_type),
        "file_formats": file_format_names(file_formats or [meta.file_format]),
        "date_asset_taken": _instant(meta.date_asset_taken, guid=meta.asset_guid),
        "tags": dict(meta.tags),
        "restricted_access": list(meta.restricted_access),
        "asset_specimen": [],
        "asset_locked": False,
    }
    subject = meta.asset_subject.strip().lower()
    if subject:
        body["asset_subject"] = subject
    if meta.template:
        body["metadata_version"] = meta.template
    digitisers = doc.raw.get("complete_digitiser_list")
    if isinstance(digitisers, list) and digitisers:
        body["complete_digitiser_list"] = _strings(digitisers)
    for name, kind in _PASS_THROUGH.items():
        value = doc.raw.get(name)
        if isinstance(value, kind) and value:
            body[name] = value
    return body


def _status(status: str) -> str:
    """``""`` and ``"working copy"`` -> ``WORKING_COPY``; other words the same way (``being processed``)."""
    words = status.strip().upper().replace("-", " ").split()
    return "_".join(words) or "WORKING_COPY"


def _strings(value: str | list[Any] | None) -> list[str]:
    """A string, list or nothing as a list of the non-empty strings (``""``/``None`` -> ``[]``)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _payload_type(value: str | list[str]) -> str:
    """Files carry ``["image"]``, ARS wants one string; empty -> ``image``."""
    first = _strings(value)
    return first[0] if first else "image"


def file_format_names(extensions: list[str]) -> list[str]:
    """ARS's file-format names for file extensions: upper-case, no dots, aliases folded (``tiff`` -> ``TIF``,
    ``jpg`` -> ``JPEG``), duplicates dropped, order kept."""
    formats: list[str] = []
    for extension in extensions:
        name = extension.strip().lstrip(".").upper()
        name = _FORMAT_ALIASES.get(name, name)
        if name and name not in formats:
            formats.append(name)
    return formats


def _instant(text: str, *, guid: str) -> str:
    """``2023-10-18T14:27:05+02:00`` -> ``2023-10-18T12:27:05Z``."""
    try:
        taken = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise MetadataError(f"date_asset_taken {text!r} is not an ISO-8601 time", guid=guid) from exc
    if taken.utcoffset() is None:
        raise MetadataError(f"date_asset_taken {text!r} has no UTC offset (e.g. +02:00)", guid=guid)
    return taken.astimezone(UTC).isoformat().replace("+00:00", "Z")
