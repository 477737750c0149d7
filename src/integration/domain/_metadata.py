"""The metadata JSON that travels with every asset (template v2_1_0, tolerating v3.0.2 names).

The typed :class:`Metadata` view holds what the integration reads; :class:`MetadataDocument` keeps the full
decoded JSON as well, so fields this code does not know are carried along unchanged, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
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

#: Objects and arrays nested deeper than this are refused; real metadata nests two or three levels.
_MAX_DEPTH = 32
_UTF8_BOM = b"\xef\xbb\xbf"


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
    """Decode a metadata JSON file; raises :class:`MetadataError` with a reason a digitiser can act on.

    Nothing else is raised, whatever ``data`` holds (invalid UTF-8, a byte order mark, deep nesting, numbers
    too large to store, a top-level array, ...): the caller rejects that one asset with the error's message.
    """
    try:
        return _decode(data)
    except MetadataError:
        raise
    except RecursionError as exc:
        raise MetadataError("the JSON is nested too deeply") from exc
    except Exception as exc:  # the decoder's edge (STYLE §9.4): one bad file must never escape as a crash
        raise MetadataError(f"the metadata could not be read ({type(exc).__name__}: {_plain(str(exc))})") from exc


def _decode(data: bytes) -> MetadataDocument:
    raw = _parse_object(_utf8_text(data))
    for new, old in _V3_RENAMES.items():
        if new in raw and old not in raw:
            raw[old] = raw[new]
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) in (None, "")]
    if missing:
        raise MetadataError("metadata lacks required field(s): " + ", ".join(missing))
    try:
        metadata = msgspec.convert(raw, Metadata, strict=False)
    except msgspec.ValidationError as exc:
        raise MetadataError(f"metadata has a field of the wrong type: {_plain(str(exc))}") from exc
    msgspec.json.encode(raw)  # the document is stored and sent on as it arrived: it must encode again
    return MetadataDocument(metadata=metadata, raw=raw)


def _utf8_text(data: bytes) -> str:
    """``data`` as text; raises :class:`MetadataError` when it is not plain UTF-8."""
    if data.startswith(_UTF8_BOM):
        raise MetadataError(
            "the file starts with a byte order mark (BOM); save it as UTF-8 without a BOM (the ingestion client does)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(
            f"the file is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at position {exc.start})"
        ) from exc


def _parse_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; raises :class:`MetadataError` for anything else."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.ValidationError as exc:  # without a type, only a number out of range fails validation
        raise MetadataError(f"the JSON holds a number too large to store ({_plain(str(exc))})") from exc
    except msgspec.DecodeError as exc:
        raise MetadataError(f"metadata is not valid JSON: {_plain(str(exc))}") from exc
    if not isinstance(raw, dict):
        raise MetadataError(f"metadata must be a JSON object, found {_json_kind(raw)}")
    if _depth(raw) > _MAX_DEPTH:
        raise MetadataError(f"the JSON is nested too deeply (more than {_MAX_DEPTH} levels of {{}} or [])")
    return raw


def _depth(value: object) -> int:
    """How many objects and arrays are nested in ``value`` at most; iterative, so any depth is safe."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _plain(text: str, limit: int = 300) -> str:
    """``text`` shortened, with control characters escaped, fit for a note a person reads."""
    escaped = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."
