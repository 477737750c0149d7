"""Deletes in the ARS emulator: files in a share (FP, spec §4.2) and assets, soft and hard (ARS, spec §3.1)."""

from __future__ import annotations

from typing import Any

from emulators.ars_support import ARS, FP, Ars, asset_body

GUID = "asset-0001"
FOLDER = f"{FP}/assetfiles/test-institution/test-collection/{GUID}"


def _names(files: list[dict[str, Any]]) -> dict[str, tuple[str, bool]]:
    """File name → (syncStatus, deleteAfterSync) of ``GET /assets/{guid}/files``."""
    return {f["path"].split(f"{GUID}/", 1)[1]: (f["syncStatus"], f["deleteAfterSync"]) for f in files}


async def _synced(ars: Ars, files: dict[str, bytes]) -> None:
    await ars.create(GUID)
    for name, data in files.items():
        assert (await ars.upload(GUID, name, data)).status_code == 200
    await ars.sync(GUID)
    ars.emulator.erda_tick()


async def test_delete_new_file_removes_it_everywhere(ars: Ars) -> None:
    """Deleting a file new in the share answers 204, drops it from disk, listing and file records, frees its room."""
    await ars.create(GUID, allocation_mb=2)
    await ars.upload(GUID, "a.tif", b"a", size_mb=2)
    async with ars.admin() as admin:
        reply = await admin.delete(f"{FOLDER}/a.tif")
    assert (reply.status_code, reply.content) == (204, b"")
    assert not ars.emulator.share_path(GUID, "a.tif").exists()
    assert ars.emulator.share_path(GUID, "").is_dir()
    assert (await ars.client.get(f"{FOLDER}/")).json() == []
    assert await ars.files(GUID) == []
    assert (await ars.upload(GUID, "c.tif", b"c", size_mb=2)).status_code == 200


async def test_delete_absent_file_is_404_and_no_share_is_400(ars: Ars) -> None:
    """An absent path is the FP 404 "Asset file not found…"; without an open share it is 400 "No writable…"."""
    async with ars.admin() as admin:
        reply = await admin.delete(f"{FOLDER}/a.tif")
        assert (reply.status_code, reply.json()["errorMessage"]) == (400, "No writable directory was found for asset")
        await ars.create(GUID)
        reply = await admin.delete(f"{FOLDER}/nope.tif")
    assert reply.status_code == 404
    assert reply.json() == {
        "type": "Error",
        "protocolVersion": "1.0",
        "errorCode": "NOT_FOUND",
        "errorMessage": "Asset file not found for institution: test-institution, collection: test-collection, "
        f"assetGuid: {GUID}, path: nope.tif",
    }


async def test_delete_folder_deletes_its_content_but_parents_are_untouchable(ars: Ars) -> None:
    """A folder path deletes the files under it; parents/ is refused with 400; the empty path empties the share."""
    await _synced(ars, {"a.tif": b"parent"})
    child = "child"
    await ars.create(child, parent_guids=[GUID])
    child_folder = f"{FP}/assetfiles/test-institution/test-collection/{child}"
    for name in ("raw/x.cr3", "raw/deep/y.cr3", "rawish.txt", "top.jpg"):
        assert (await ars.upload(child, name, name.encode())).status_code == 200
    async with ars.admin() as admin:
        assert (await admin.delete(f"{child_folder}/raw")).status_code == 204
        listed = {url.rsplit(f"{child}/", 1)[1] for url in (await ars.client.get(f"{child_folder}/")).json()}
        assert listed == {"rawish.txt", "top.jpg", f"parents/{GUID}/a.tif"}
        assert not ars.emulator.share_path(child, "raw").exists()
        for path in (f"parents/{GUID}/a.tif", "parents"):
            reply = await admin.delete(f"{child_folder}/{path}")
            assert (reply.status_code, reply.json()["errorCode"]) == (400, "BAD_REQUEST"), path
        assert (await admin.delete(f"{child_folder}/")).status_code == 204
    listed = {url.rsplit(f"{child}/", 1)[1] for url in (await ars.client.get(f"{child_folder}/")).json()}
    assert listed == {f"parents/{GUID}/a.tif"}
    assert ars.emulator.share_path(child, f"parents/{GUID}/a.tif").read_bytes() == b"parent"


async def test_deleted_synced_file_leaves_erda_at_the_next_sync(ars: Ars) -> None:
    """A synced file deleted from a re-opened share is flagged deleteAfterSync; the next sync removes it from ERDA."""
    await _synced(ars, {"a.tif": b"a", "b.tif": b"b"})
    await ars.open_share(GUID)
    async with ars.admin() as admin:
        assert (await admin.delete(f"{FOLDER}/a.tif")).status_code == 204
    assert _names(await ars.files(GUID)) == {"a.tif": ("SYNCHRONIZED", True), "b.tif": ("SYNCHRONIZED", False)}
    assert ars.emulator.erda_path(GUID, "a.tif").exists()
    await ars.sync(GUID)
    ars.emulator.erda_tick()
    assert not ars.emulator.erda_path(GUID, "a.tif").exists()
    assert ars.emulator.erda_path(GUID, "b.tif").read_bytes() == b"b"
    assert _names(await ars.files(GUID)) == {"b.tif": ("SYNCHRONIZED", False)}
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert (events[-1]["event"], events[-1]["change_list"]) == ("UPDATE_ASSET", ["FILE_DELETED"])


async def test_soft_delete_records_events_and_keeps_everything(ars: Ars) -> None:
    """DELETE asset answers 204, adds DELETE_ASSET + DELETE_ASSET_METADATA, keeps files; twice is 400."""
    await _synced(ars, {"a.tif": b"a"})
    async with ars.admin() as admin:
        assert (await admin.delete(f"{ARS}/assetmetadata/{GUID}")).status_code == 204
        again = await admin.delete(f"{ARS}/assetmetadata/{GUID}")
    assert (again.status_code, again.json()["errorMessage"]) == (400, "Asset is already deleted")
    asset = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}")).json()
    assert [e["event"] for e in asset["events"]][-2:] == ["DELETE_ASSET", "DELETE_ASSET_METADATA"]
    assert asset["asset_deleted_by"] == "service-account-integration-admin"
    assert asset["date_asset_deleted_ars"] is not None
    assert ars.emulator.erda_path(GUID, "a.tif").read_bytes() == b"a"
    assert (await ars.status(GUID)).json()["status"] == "ERDA_SYNCHRONISED"


async def test_soft_delete_of_unknown_or_locked_asset(ars: Ars) -> None:
    """Soft delete of an unknown asset is 400 "Asset doesnt exist!"; of a locked one 403 "Asset is locked"."""
    await ars.create(GUID)
    locked = await ars.client.put(f"{ARS}/assetmetadata/{GUID}", json=asset_body(GUID, asset_locked=True))
    assert locked.status_code == 200
    async with ars.admin() as admin:
        unknown = await admin.delete(f"{ARS}/assetmetadata/nope")
        refused = await admin.delete(f"{ARS}/assetmetadata/{GUID}")
    assert (unknown.status_code, unknown.json()["errorMessage"]) == (400, "Asset doesnt exist!")
    assert (refused.status_code, refused.json()["errorCode"], refused.json()["errorMessage"]) == (
        403,
        "FORBIDDEN",
        "Asset is locked",
    )


async def test_hard_delete_drops_share_then_asset(ars: Ars) -> None:
    """deleteMetadata answers 200 with status "deleted", drops the open share and the asset; unknown is 400."""
    await ars.create(GUID, allocation_mb=7)
    await ars.upload(GUID, "a.tif", b"a")
    async with ars.admin() as admin:
        reply = await admin.delete(f"{ARS}/assetmetadata/{GUID}/deleteMetadata")
        assert reply.status_code == 200
        body = reply.json()
        assert (body["asset_guid"], body["status"]) == (GUID, "deleted")
        assert body["message"]
        unknown = await admin.delete(f"{ARS}/assetmetadata/{GUID}/deleteMetadata")
    assert (unknown.status_code, unknown.json()["errorMessage"]) == (400, "Asset doesnt exist!")
    assert (await ars.status(GUID)).status_code == 404
    assert (await ars.client.get(f"{ARS}/assetmetadata/{GUID}")).status_code == 204
    assert (await ars.client.get(f"{ARS}/assets/inprogress")).json() == []
    assert ars.emulator.state()["open_shares"] == 0
    assert ars.emulator.state()["allocated_mb"] == 0
    assert not ars.emulator.data_dir.joinpath("shares/test-institution/test-collection", GUID).exists()
    assert (await ars.create(GUID)).status_code == 200


async def test_hard_delete_while_synchronizing_is_502(ars: Ars) -> None:
    """deleteMetadata of an asset whose share is queued for ERDA is 502 UPSTREAM_ERROR and deletes nothing."""
    await ars.create(GUID)
    await ars.sync(GUID)
    async with ars.admin() as admin:
        reply = await admin.delete(f"{ARS}/assetmetadata/{GUID}/deleteMetadata")
    assert (reply.status_code, reply.json()["errorCode"]) == (502, "UPSTREAM_ERROR")
    assert (await ars.status(GUID)).json()["status"] == "ASSET_RECEIVED"
