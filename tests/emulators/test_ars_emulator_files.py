"""Uploads, listings and the CRC check of the file-proxy emulator (spec §4.2)."""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from emulators.ars_support import FP, Ars, open_ars
from integration.emulators.ars import EmulatorSettings, InstitutionSettings

GUID = "asset-0001"
FOLDER = f"{FP}/assetfiles/test-institution/test-collection/{GUID}"


async def test_upload_stores_bytes_and_lists_them(ars: Ars) -> None:
    """A good upload answers 200 with both CRCs, lands in the share and is listed as NEW_FILE."""
    await ars.create(GUID)
    data = b"tiff bytes" * 100
    reply = await ars.upload(GUID, "img.tif", data)
    assert reply.status_code == 200
    assert reply.json() == {"expected_crc": zlib.crc32(data), "actual_crc": zlib.crc32(data)}
    assert ars.emulator.share_path(GUID, "img.tif").read_bytes() == data
    listing = (await ars.client.get(f"{FOLDER}/")).json()
    assert listing == [f"http://ars/file_proxy/api/assetfiles/test-institution/test-collection/{GUID}/img.tif"]
    files = (await ars.client.get(f"{FP}/assets/{GUID}/files")).json()
    assert len(files) == 1
    assert files[0]["path"] == f"/test-institution/test-collection/{GUID}/img.tif"
    assert (files[0]["sizeBytes"], files[0]["crc"], files[0]["syncStatus"]) == (len(data), zlib.crc32(data), "NEW_FILE")
    download = await ars.client.get(f"{FOLDER}/img.tif")
    assert download.content == data
    assert ars.emulator.stats().uploads_ok == 1


async def test_sub_folders_are_allowed_and_overwrite_replaces(ars: Ars) -> None:
    """A path with sub-folders is stored as such and a second upload to the same path replaces it."""
    await ars.create(GUID)
    assert (await ars.upload(GUID, "raw/img.cr3", b"one")).status_code == 200
    assert (await ars.upload(GUID, "raw/img.cr3", b"two")).status_code == 200
    assert ars.emulator.share_path(GUID, "raw/img.cr3").read_bytes() == b"two"
    assert len((await ars.client.get(f"{FP}/assets/{GUID}/files")).json()) == 1


async def test_crc_mismatch_is_507_and_stores_nothing(ars: Ars) -> None:
    """A wrong CRC answers 507 with expected and actual CRC and leaves the share unchanged."""
    await ars.create(GUID)
    reply = await ars.upload(GUID, "img.tif", b"data", crc=12345)
    assert reply.status_code == 507
    assert reply.json() == {"expected_crc": 12345, "actual_crc": zlib.crc32(b"data")}
    assert (await ars.client.get(f"{FP}/assets/{GUID}/files")).json() == []
    assert not ars.emulator.share_path(GUID, "img.tif").exists()
    assert list((ars.emulator.data_dir / "tmp").iterdir()) == []
    assert ars.emulator.stats().uploads_crc_mismatch == 1


async def test_crc_corrupt_fault_makes_the_next_uploads_507(ars: Ars) -> None:
    """crc_corrupt_next=1 turns exactly the next upload into a 507; the retry succeeds."""
    await ars.create(GUID)
    ars.emulator.update_faults({"crc_corrupt_next": 1})
    assert (await ars.upload(GUID, "img.tif", b"data")).status_code == 507
    assert (await ars.upload(GUID, "img.tif", b"data")).status_code == 200
    assert ars.emulator.faults.crc_corrupt_next == 0


async def test_upload_rules(ars: Ars) -> None:
    """file_size_mb 0, crc 0, parents/ paths, '..' and a missing share are refused with the FP texts."""
    assert (await ars.upload(GUID, "a.tif", b"x")).json()["errorMessage"] == (
        "There is no writeable directory for this asset"
    )
    await ars.create(GUID)
    cases = [
        ("a.tif", {"size_mb": 0}, "file_size_mb cannot be 0"),
        ("a.tif", {"crc": 0}, "crc cannot be 0"),
        ("parents/p/a.tif", {}, "File path cannot start with 'parent'"),
        ("..%2Fa.tif", {}, "File path is not valid"),
    ]
    for name, options, message in cases:
        reply = await ars.upload(GUID, name, b"x", **options)
        assert reply.status_code == 400
        assert reply.json() == {
            "type": "Error",
            "protocolVersion": "1.0",
            "errorCode": "BAD_REQUEST",
            "errorMessage": message,
        }


async def test_bad_query_number_is_404_envelope(ars: Ars) -> None:
    """A crc that is not an integer is a JAX-RS 404, rendered as the FP NOT_FOUND envelope."""
    await ars.create(GUID)
    reply = await ars.client.put(f"{FOLDER}/a.tif", params={"crc": "xyz", "file_size_mb": 1}, content=b"x")
    assert reply.status_code == 404
    assert reply.json()["errorCode"] == "NOT_FOUND"


async def test_allocation_exceeded_uses_declared_sizes(ars: Ars) -> None:
    """The allocation check adds the declared file_size_mb to what the share already holds."""
    await ars.create(GUID, allocation_mb=2)
    assert (await ars.upload(GUID, "a.tif", b"a", size_mb=2)).status_code == 200
    reply = await ars.upload(GUID, "b.tif", b"b", size_mb=2)
    assert reply.status_code == 400
    assert reply.json()["errorMessage"] == "Total size of asset files exceeds allocated disk space"
    assert (await ars.upload(GUID, "a.tif", b"aa", size_mb=2)).status_code == 200


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    for _ in range(count):
        yield block


async def test_upload_is_streamed_not_buffered(ars: Ars) -> None:
    """A 16 MB body goes to disk chunk by chunk: peak traced memory stays far below the body size."""
    await ars.create(GUID, allocation_mb=100)
    expected = 0
    async for block in _chunks(256, 65536):
        expected = zlib.crc32(block, expected)
    tracemalloc.start()
    try:
        reply = await ars.client.put(
            f"{FOLDER}/big.raw", params={"crc": expected, "file_size_mb": 17}, content=_chunks(256, 65536)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 200
    assert ars.emulator.share_path(GUID, "big.raw").stat().st_size == 16 * 1024 * 1024
    assert peak < 4 * 1024 * 1024


async def test_listing_has_parents_and_names_with_spaces(settings: EmulatorSettings) -> None:
    """The share listing has a URL per file, parents/ included, for percent-encoded names with spaces too."""
    herbarium = InstitutionSettings(collections=("Vascular plants",), pipelines=("p",), workstations=("w",))
    seeded = msgspec.structs.replace(settings, institutions={"NHMD Herbarium": herbarium})
    fields: dict[str, Any] = {
        "institution": "NHMD Herbarium",
        "collection": "Vascular plants",
        "pipeline": "p",
        "workstation": "w",
    }
    folder = f"{FP}/assetfiles/NHMD%20Herbarium/Vascular%20plants"
    async with open_ars(seeded) as ars:
        assert (await ars.create("parent", **fields)).status_code == 200
        params = {"crc": zlib.crc32(b"parent"), "file_size_mb": 1}
        assert (await ars.client.put(f"{folder}/parent/scan%201.tif", params=params, content=b"parent")).is_success
        await ars.sync("parent")
        ars.emulator.erda_tick()
        assert (await ars.create("child", parent_guids=["parent"], **fields)).status_code == 200
        params = {"crc": zlib.crc32(b"child"), "file_size_mb": 1}
        assert (await ars.client.put(f"{folder}/child/crop%20a.jpg", params=params, content=b"child")).is_success
        listing = (await ars.client.get(f"{folder}/child/")).json()
        base = "http://ars/file_proxy/api/assetfiles/NHMD Herbarium/Vascular plants/child"
        assert sorted(listing) == [f"{base}/crop a.jpg", f"{base}/parents/parent/scan 1.tif"]
        assert [(await ars.client.get(url)).content for url in sorted(listing)] == [b"child", b"parent"]


async def test_listing_without_open_share_is_empty(ars: Ars) -> None:
    """With no open share the listing is 200 [] (the file proxy lists a folder that is not there)."""
    reply = await ars.client.get(f"{FOLDER}/")
    assert (reply.status_code, reply.json()) == (200, [])
    await ars.create(GUID)
    await ars.sync(GUID)
    ars.emulator.erda_tick()
    assert (await ars.client.get(f"{FOLDER}/")).json() == []


async def test_get_one_file_of_the_share(ars: Ars) -> None:
    """GET of a file in the open share answers its bytes; an absent one the FP 404 with the full path in it."""
    await ars.create(GUID)
    await ars.upload(GUID, "raw/a.cr3", b"raw bytes")
    reply = await ars.client.get(f"{FOLDER}/raw/a.cr3")
    assert (reply.status_code, reply.content) == (200, b"raw bytes")
    assert "a.cr3" in reply.headers["content-disposition"]
    reply = await ars.client.get(f"{FOLDER}/raw/b.cr3")
    assert reply.status_code == 404
    assert reply.json() == {
        "type": "Error",
        "protocolVersion": "1.0",
        "errorCode": "NOT_FOUND",
        "errorMessage": "Asset file not found for institution: test-institution, collection: test-collection, "
        f"assetGuid: {GUID}, path: raw/b.cr3",
    }
