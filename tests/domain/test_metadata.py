"""The metadata JSON: v2_1_0 as it arrives, v3.0.2 names tolerated, unknown fields kept, clear errors."""

from __future__ import annotations

import contextlib
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _with(**fields: object) -> bytes:
    """V2 with ``fields`` replaced, as JSON bytes."""
    return json.dumps({**V2, **fields}).encode()


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    """V2 plus an unknown field holding ``depth`` arrays nested in one another."""
    return _with(deep=0).replace(b'"deep": 0', b'"deep": ' + b"[" * depth + inner + b"]" * depth)


#: Nasty inputs, each with words its reason must contain. Built here, never committed as files.
NASTY: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8 in a value": (_with(digitiser="x").replace(b'"x"', b'"\xff"'), "invalid byte 0xff at position"),
    "invalid UTF-8 in a key": (b'{"\xfe": 1}', "not UTF-8 text (invalid byte 0xfe at position 2)"),
    "UTF-8 encoded surrogate": (_with(digitiser="x").replace(b'"x"', b'"\xed\xa0\x80"'), "not UTF-8 text"),
    "truncated UTF-8 sequence": (_with(digitiser="x").replace(b'"x"', b'"\xc3"'), "not UTF-8 text"),
    "lone surrogate escape": (_with(digitiser="x").replace(b'"x"', b'"\\ud800"'), "not valid JSON"),
    "UTF-8 byte order mark": (b"\xef\xbb\xbf" + _with(), "byte order mark"),
    "UTF-16 text": (json.dumps(V2).encode("utf-16"), "not UTF-8 text (invalid byte 0xff at position 0)"),
    "UTF-16 without BOM": (json.dumps(V2).encode("utf-16-le"), "not valid JSON"),
    "arrays nested 5000 deep": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    "objects nested 5000 deep": (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
    "unknown field nested 900 deep": (_nested(900), "nested too deeply"),
    "unknown field nested 33 deep": (_nested(32), "nested too deeply"),
    "integer of 5000 digits": (_with(n=0).replace(b'"n": 0', b'"n": ' + b"9" * 5000), "number too large"),
    "float out of range": (_with(n=0).replace(b'"n": 0', b'"n": 1e400'), "number too large"),
    "NaN": (_with(n=0).replace(b'"n": 0', b'"n": NaN'), "not valid JSON"),
    "Infinity": (_with(n=0).replace(b'"n": 0', b'"n": -Infinity'), "not valid JSON"),
    "top-level array": (b"[" + _with() + b"]", "must be a JSON object, found an array"),
    "top-level string": (b'"asset"', "found a string"),
    "top-level null": (b"null", "found null"),
    "non-string key": (b'{1: "a"}', "not valid JSON"),
    "single quotes": (b"{'asset_guid': 'x'}", "not valid JSON"),
    "trailing comma": (_with()[:-1] + b",}", "not valid JSON"),
    "trailing garbage": (_with() + b" {}", "not valid JSON"),
    "empty file": (b"", "not valid JSON"),
    "NUL bytes only": (b"\x00" * 64, "not valid JSON"),
    "truncated": (_with()[:40], "not valid JSON"),
    "required field is an object": (_with(digitiser={"name": "x"}), "wrong type"),
    "required field is a list": (_with(asset_guid=["a", "b"]), "wrong type"),
    "tags nested": (_with(tags={"a": {"b": "c"}}), "wrong type"),
    "barcode of numbers nested": (_with(barcode=[[1, [2]]]), "wrong type"),
    "required fields null": (_with(institution=None, collection=None), "institution, collection"),
}


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nasty_input_raises_only_metadata_error(name: str) -> None:
    """Every input of the nasty corpus raises MetadataError with a plain reason, never another exception."""
    data, words = NASTY[name]
    with pytest.raises(MetadataError) as caught:
        decode_metadata(data)
    assert words in caught.value.message
    assert caught.value.message.isprintable()


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """An unknown field nested 31 levels deep (32 with the document itself) still decodes and encodes again."""
    doc = decode_metadata(_nested(31))
    assert msgspec.json.decode(doc.encode())["deep"] == json.loads(_nested(31))["deep"]


def test_unexpected_exception_inside_decoding_becomes_metadata_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the decoder raises (here a ValueError msgspec does not document) comes out as MetadataError."""

    def odd_decode(data: object) -> object:
        raise ValueError("odd \x07 bytes")

    monkeypatch.setattr(msgspec.json, "decode", odd_decode)
    with pytest.raises(MetadataError, match=r"could not be read \(ValueError: odd \\x07 bytes\)"):
        decode_metadata(_with())


def test_recursion_error_anywhere_becomes_nested_too_deeply(monkeypatch: pytest.MonkeyPatch) -> None:
    """A RecursionError from any step (here the typed conversion) is reported as nesting too deep."""

    def recursing(*args: object, **kwargs: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(msgspec, "convert", recursing)
    with pytest.raises(MetadataError, match="nested too deeply"):
        decode_metadata(_with())


_ANY_BYTES = st.binary(max_size=200)
_IN_A_STRING = st.builds(lambda b: b'{"asset_guid": "' + b + b'"}', st.binary(max_size=16))
_DEEP = st.builds(lambda n, inner: b"[" * n + inner + b"]" * n, st.integers(0, 4000), st.binary(max_size=4))
_HUGE_NUMBER = st.builds(lambda n: b'{"n": ' + b"9" * n + b"}", st.integers(1, 5000))


@settings(max_examples=300, deadline=None)
@given(data=_ANY_BYTES | _IN_A_STRING | _DEEP | _HUGE_NUMBER)
def test_arbitrary_bytes_never_raise_anything_but_metadata_error(data: bytes) -> None:
    """For any bytes (raw, inside a JSON string, deeply nested, a huge number), only MetadataError is raised."""
    with contextlib.suppress(MetadataError):
        decode_metadata(data)
