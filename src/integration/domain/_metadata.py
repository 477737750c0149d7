"""The metadata JSON that travels with every asset (template v2_1_0, tolerating v3.0.2 names).

The typed :class:`Metadata` view holds what the integration reads; :class:`MetadataDocument` keeps the full
decoded JSON as well, so fields this code does not know are carried along unchanged, never dropped.
"""

from __future__ import annotations

from typing import Any

import msgspec

from integration.errors import MetadataError

__all__ = ["REQUIRED_FIELDS", "Metadata", "MetadataDocument", "decode_metadata"]

#: Fields without which an asset cannot be registered in ARS or routed to a pipeline.
REQUIRED_FIELDS: tuple[str, ...] = (
    "asset_guid",
    "institution",
    "collection",
    "pipeline_name",
    "workstation_name",
    "file_format",
    "date_asset_taken",
    "digitiser",
)

#: v3.0.2 name -> v2_1_0 name, applied only when the v2_1_0 name is absent.
_V3_RENAMES: dict[str, str] = {
    "multi_specimen": "multispecimen",
    "date_pushed_to_specify": "pushed_to_specify_date",
}


class Metadata(msgspec.Struct, kw_only=True, frozen=True):
    """Typed view of the fields the integration uses; unknown fields live in ``MetadataDocument.raw``."""

    asset_guid: str
    institution: str
    collection: str
    pipeline_name: str
    workstation_name: str
    file_format: str
    date_asset_taken: str
    digitiser: str
    asset_pid: str = ""
    asset_subject: str = ""
    status: str = ""
    barcode: list[str] = msgspec.field(default_factory=list)
    funding: str | list[str] = ""
    multispecimen: bool = False
    parent_guid: str | list[str] | None = None
    payload_type: str | list[str] = ""
    preparation_type: str = ""
    restricted_access: list[str] = msgspec.field(default_factory=list)
    specimen_pid: str | list[str] = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    metadata_version: str = ""

    @property
    def file_extension(self) -> str:
        """``file_format`` as a lower-case file extension without the dot (``tif``)."""
        return self.file_format.strip().lower().lstrip(".")

    @property
    def template(self) -> str:
        """The template version this JSON declares (``v2_1_0``, ``v3.0.2``), or ``""``."""
        return self.metadata_version or self.tags.get("metadataTemplate", "")


class MetadataDocument(msgspec.Struct, frozen=True):
    """A decoded metadata JSON: the typed view plus every field as it arrived."""

    metadata: Metadata
    raw: dict[str, Any]

    def encode(self) -> bytes:
        """The full JSON document, unknown fields included."""
        return msgspec.json.encode(self.raw)


def decode_metadata(data: bytes) -> MetadataDocument:
    """Decode a metadata JSON file; raises :class:`MetadataError` with a reason a digitiser can act on."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise MetadataError(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise MetadataError(f"metadata must be a JSON object, found {type(raw).__name__}")
    for new, old in _V3_RENAMES.items():
        if new in raw and old not in raw:
            raw[old] = raw[new]
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) in (None, "")]
    if missing:
        raise MetadataError("metadata lacks required field(s): " + ", ".join(missing))
    try:
        metadata = msgspec.convert(raw, Metadata, strict=False)
    except msgspec.ValidationError as exc:
        raise MetadataError(f"metadata has a field of the wrong type: {exc}") from exc
    return MetadataDocument(metadata=metadata, raw=raw)
