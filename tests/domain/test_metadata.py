"""The metadata JSON: v2_1_0 as it arrives, v3.0.2 names tolerated, unknown fields kept, clear errors."""

from __future__ import annotations

import json

import msgspec
import pytest

from integration.domain import REQUIRED_FIELDS, allocation_mb, decode_metadata, size_mb
from integration.errors import MetadataError

V2 = {
    "asset_guid": "7e8-8-08-0c-1b-15-2-003-04-000-01e240",
    "institution": "NHMD",
    "collection": "Vascular plants",
    "pipeline_name": "PIPEHERB0001",
    "workstation_name": "WORKHERB0001",
    "file_format": "tif",
    "date_asset_taken": "2023-10-18T14:27:05+02:00",
    "digitiser": "jdoe",
    "payload_type": ["image"],
    "funding": "DaSSCo",
    "multispecimen": False,
    "parent_guid": "",
    "tags": {"metadataTemplate": "v2_1_0"},
    "barcode": [],
    "specimen_pid": "",
    "a_field_from_the_future": {"kept": True},
}


def test_v2_1_0_decodes_and_keeps_unknown_fields() -> None:
    """A v2_1_0 file decodes; fields the code does not know are carried along unchanged."""
    doc = decode_metadata(json.dumps(V2).encode())
    assert doc.metadata.pipeline_name == "PIPEHERB0001"
    assert doc.metadata.file_extension == "tif"
    assert doc.metadata.template == "v2_1_0"
    assert msgspec.json.decode(doc.encode())["a_field_from_the_future"] == {"kept": True}


def test_v3_0_2_names_are_tolerated() -> None:
    """v3.0.2 renames (multi_specimen, parent_guid list, funding list) are accepted."""
    v3 = {k: v for k, v in V2.items() if k != "multispecimen"}
    v3.update(
        multi_specimen=True,
        parent_guid=["7e8-8-08-0c-1b-15-2-003-04-000-01e241"],
        funding=["DaSSCo"],
        metadata_version="v3.0.2",
    )
    doc = decode_metadata(json.dumps(v3).encode())
    assert doc.metadata.multispecimen is True
    assert doc.metadata.template == "v3.0.2"
    assert doc.metadata.parent_guid == ["7e8-8-08-0c-1b-15-2-003-04-000-01e241"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({**V2, "collection": ""}).encode(), "collection"),
        (json.dumps({k: v for k, v in V2.items() if k not in ("digitiser", "institution")}).encode(), "digitiser"),
        (json.dumps({**V2, "barcode": "not-a-list"}).encode(), "wrong type"),
    ],
)
def test_bad_metadata_raises_a_plain_reason(data: bytes, words: str) -> None:
    """Malformed JSON, missing required fields and wrong types raise MetadataError naming the cause."""
    with pytest.raises(MetadataError, match=words):
        decode_metadata(data)


def test_all_required_fields_are_named_at_once() -> None:
    """Every missing required field is listed in one message."""
    with pytest.raises(MetadataError) as caught:
        decode_metadata(b"{}")
    for name in REQUIRED_FIELDS:
        assert name in str(caught.value)


def test_sizes_and_allocation() -> None:
    """ARS megabytes are 10^6 bytes rounded up, at least 1; allocation adds headroom."""
    assert size_mb(0) == 1
    assert size_mb(1_000_000) == 1
    assert size_mb(1_000_001) == 2
    assert allocation_mb([1_500_000, 10], headroom_fraction=0.1, headroom_min_mb=1) == 4
    assert allocation_mb([100_000_000], headroom_fraction=0.1, headroom_min_mb=1) == 110
