"""build_create_body: N-Drive metadata (v2_1_0, v3.0.2 names) to the ARS E3 create body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration.adapters.ars import build_create_body
from integration.domain import MetadataDocument, decode_metadata
from integration.errors import MetadataError

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
PARENT = "7e8-8-08-0c-1b-15-2-003-04-000-0abcde"


def v2_metadata(**changes: Any) -> dict[str, Any]:
    """A v2_1_0 metadata JSON as the ingestion client writes it."""
    raw: dict[str, Any] = {
        "asset_created_by": "",
        "asset_guid": GUID,
        "asset_pid": "",
        "asset_subject": "",
        "barcode": [],
        "collection": "Vascular plants",
        "date_asset_taken": "2023-10-18T14:27:05+02:00",
        "digitiser": "Jane Doe",
        "external_publisher": [],
        "file_format": "tif",
        "funding": "DaSSCo",
        "institution": "NHMD",
        "multispecimen": False,
        "parent_guid": "",
        "payload_type": ["image"],
        "pipeline_name": "PIPEHERB0001",
        "preparation_type": "sheet",
        "restricted_access": [],
        "specimen_pid": "",
        "status": "",
        "tags": {"metadataTemplate": "v2_1_0"},
        "workstation_name": "WORKHERB0001",
    }
    raw.update(changes)
    return raw


def document(raw: dict[str, Any]) -> MetadataDocument:
    """Decode ``raw`` the way the N-Drive watcher does."""
    return decode_metadata(msgspec.json.encode(raw))


def body_for(file_formats: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    """The create body for a v2_1_0 document with ``changes``."""
    return build_create_body(document(v2_metadata(**changes)), file_formats=file_formats or ["tif"])


def test_v2_metadata_maps_to_the_e3_body() -> None:
    """A typical v2_1_0 file becomes a complete E3 body with E3 field names and ARS's value forms."""
    assert body_for(["tif", "dng"]) == {
        "asset_guid": GUID,
        "asset_pid": f"urn:dassco:{GUID}",
        "status": "WORKING_COPY",
        "institution": "NHMD",
        "collection": "Vascular plants",
        "pipeline": "PIPEHERB0001",
        "workstation": "WORKHERB0001",
        "digitiser": "Jane Doe",
        "parent_guids": [],
        "funding": ["DaSSCo"],
        "payload_type": "image",
        "file_formats": ["TIF", "DNG"],
        "date_asset_taken": "2023-10-18T12:27:05Z",
        "tags": {"metadataTemplate": "v2_1_0"},
        "restricted_access": [],
        "asset_specimen": [],
        "asset_locked": False,
        "metadata_version": "v2_1_0",
    }


def test_no_e1_names_are_sent() -> None:
    """Names ARS E3 would silently drop (specimens, parent_guid, subject, *_name) never appear in the body."""
    body = body_for(asset_subject="Specimen", parent_guid=PARENT)
    assert not {"specimens", "parent_guid", "subject", "pipeline_name", "workstation_name", "file_format"} & set(body)


def test_v3_parent_guid_list_and_funding_list() -> None:
    """v3.0.2 lists for parent_guid and funding are kept as lists, empty entries dropped."""
    body = body_for(parent_guid=[PARENT, ""], funding=["DaSSCo", "Novo"], metadata_version="v3.0.2")
    assert body["parent_guids"] == [PARENT]
    assert body["funding"] == ["DaSSCo", "Novo"]
    assert body["metadata_version"] == "v3.0.2"


@pytest.mark.parametrize(
    ("parent_guid", "expected"), [(None, []), ("", []), (PARENT, [PARENT]), ([], []), ([PARENT], [PARENT])]
)
def test_parent_guid_forms(parent_guid: str | list[str] | None, expected: list[str]) -> None:
    """parent_guid as null, "", a string or a list all become the parent_guids list."""
    assert body_for(parent_guid=parent_guid)["parent_guids"] == expected


@pytest.mark.parametrize(("funding", "expected"), [("", []), ("DaSSCo", ["DaSSCo"]), ([], [])])
def test_funding_forms(funding: str | list[str], expected: list[str]) -> None:
    """funding as a string becomes a one-element list; empty becomes []."""
    assert body_for(funding=funding)["funding"] == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("", "WORKING_COPY"),
        ("working copy", "WORKING_COPY"),
        ("WORKING_COPY", "WORKING_COPY"),
        ("being processed", "BEING_PROCESSED"),
    ],
)
def test_status_forms(status: str, expected: str) -> None:
    """Empty status is WORKING_COPY; dassco-utils' lower-case words become ARS's upper-case names."""
    assert body_for(status=status)["status"] == expected


def test_asset_pid_kept_when_present() -> None:
    """A metadata asset_pid is sent as it is; only an empty one is replaced (ARS requires it non-empty)."""
    assert body_for(asset_pid="https://pid.example/x")["asset_pid"] == "https://pid.example/x"


def test_subject_lower_cased_or_omitted() -> None:
    """asset_subject is lower-cased, and left out when empty (an unknown subject would be a 5xx in ARS)."""
    assert body_for(asset_subject="Specimen")["asset_subject"] == "specimen"
    assert "asset_subject" not in body_for(asset_subject="")


@pytest.mark.parametrize(
    ("payload", "expected"), [(["image"], "image"), (["ct scan", "image"], "ct scan"), ("", "image"), ([], "image")]
)
def test_payload_type_forms(payload: str | list[str], expected: str) -> None:
    """payload_type lists give their first element; empty gives "image"."""
    assert body_for(payload_type=payload)["payload_type"] == expected


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        (["tif"], ["TIF"]),
        (["tiff", ".TIF"], ["TIF"]),
        (["jpg", "jpeg"], ["JPEG"]),
        (["tif", "cr3", "raf"], ["TIF", "CR3", "RAF"]),
    ],
)
def test_file_formats_normalised(formats: list[str], expected: list[str]) -> None:
    """Extensions become ARS file-format names: upper-case, aliases folded, no duplicates."""
    assert body_for(formats)["file_formats"] == expected


def test_file_formats_fall_back_to_metadata() -> None:
    """Without file extensions from the caller, the metadata's file_format is used."""
    body = build_create_body(document(v2_metadata(file_format="jpeg")), file_formats=[])
    assert body["file_formats"] == ["JPEG"]


def test_v3_pass_through_fields() -> None:
    """v3.0.2 fields E3 accepts under the same name are carried when present."""
    body = body_for(camera_setting_control="f/8", metadata_source="ingestion", complete_digitiser_list=["a", "b"])
    assert (body["camera_setting_control"], body["metadata_source"]) == ("f/8", "ingestion")
    assert body["complete_digitiser_list"] == ["a", "b"]


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        ("2023-10-18T14:27:05+02:00", "2023-10-18T12:27:05Z"),
        ("2023-10-18T12:27:05Z", "2023-10-18T12:27:05Z"),
        ("2024-01-01T00:30:00.250+01:00", "2023-12-31T23:30:00.250000Z"),
    ],
)
def test_date_asset_taken_in_utc(taken: str, expected: str) -> None:
    """date_asset_taken with any offset is sent as the same instant in UTC with a Z."""
    assert body_for(date_asset_taken=taken)["date_asset_taken"] == expected


@pytest.mark.parametrize("taken", ["2023-10-18T14:27:05", "18/10/2023"])
def test_date_without_offset_or_unparsable_is_a_metadata_error(taken: str) -> None:
    """A time without a UTC offset, or no ISO time at all, raises MetadataError naming the field."""
    with pytest.raises(MetadataError, match="date_asset_taken") as caught:
        body_for(date_asset_taken=taken)
    assert caught.value.guid == GUID


@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_date_conversion_keeps_the_instant(moment: datetime, offset_minutes: int) -> None:
    """For any offset, the UTC text names the same instant as the input."""
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    sent = body_for(date_asset_taken=aware.isoformat())["date_asset_taken"]
    assert sent.endswith("Z")
    assert datetime.fromisoformat(sent) == aware.astimezone(UTC)


def test_body_is_pure() -> None:
    """Building the body twice gives equal bodies and leaves the document untouched."""
    doc = document(v2_metadata(parent_guid=[PARENT], tags={"ocr": "text"}))
    before = msgspec.json.encode(doc.raw)
    first = build_create_body(doc, file_formats=["tif"])
    first["tags"]["changed"] = "yes"
    first["parent_guids"].append("x")
    assert build_create_body(doc, file_formats=["tif"])["tags"] == {"ocr": "text"}
    assert msgspec.json.encode(doc.raw) == before
