"""Synchronize, the ERDA job and shares of the file-proxy emulator (spec §4.1, §7)."""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

from emulators.ars_support import ARS, FP, Ars, open_ars
from integration.emulators.ars import EmulatorSettings, TickResult

GUID = "asset-0001"
SHARE = f"{FP}/shares/assets/{GUID}"


def _creation(allocation_mb: int = 10, **asset: Any) -> dict[str, Any]:
    return {
        "assets": [{"asset_guid": GUID, **asset}],
        "users": ["service-account-integration"],
        "allocation_mb": allocation_mb,
    }


async def _synced_asset(ars: Ars, files: dict[str, bytes]) -> None:
    await ars.create(GUID)
    for name, data in files.items():
        assert (await ars.upload(GUID, name, data)).status_code == 200
    assert (await ars.sync(GUID)).status_code == 204
    ars.emulator.erda_tick()


async def test_sync_then_tick_reaches_erda_synchronised(ars: Ars) -> None:
    """synchronize queues (ASSET_RECEIVED, share still allocated); one tick mirrors to ERDA and closes."""
    await ars.create(GUID, allocation_mb=20)
    tif, raw = b"T" * 1000, b"R" * 3000
    await ars.upload(GUID, "img.tif", tif)
    await ars.upload(GUID, "img.cr3", raw)
    assert (await ars.sync(GUID)).status_code == 204
    queued = (await ars.status(GUID)).json()
    assert (queued["status"], queued["share_allocation_mb"]) == ("ASSET_RECEIVED", 20)
    assert ars.emulator.erda_tick() == TickResult(processed=1, synced=1, failed=0)
    done = (await ars.status(GUID)).json()
    assert (done["status"], done["share_allocation_mb"], done["error_message"]) == ("ERDA_SYNCHRONISED", None, None)
    assert ars.emulator.erda_path(GUID, "img.tif").read_bytes() == tif
    assert ars.emulator.erda_path(GUID, "img.cr3").read_bytes() == raw
    files = (await ars.client.get(f"{FP}/assets/{GUID}/files")).json()
    assert {(f["path"].rsplit("/", 1)[1], f["syncStatus"], f["crc"]) for f in files} == {
        ("img.tif", "SYNCHRONIZED", zlib.crc32(tif)),
        ("img.cr3", "SYNCHRONIZED", zlib.crc32(raw)),
    }
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert [e["event"] for e in events] == ["CREATE_ASSET_METADATA", "CREATE_ASSET"]
    assert not ars.emulator.data_dir.joinpath("shares/test-institution/test-collection", GUID).exists()
    stats = ars.emulator.stats()
    assert (stats.syncs_requested, stats.erda_synced) == (1, 1)
    assert (await ars.client.get(f"{ARS}/assets/inprogress")).json() == []


async def test_synchronize_without_share_is_400(ars: Ars) -> None:
    """synchronize with no writeable share answers 400 "No writeable share for asset found"."""
    await _synced_asset(ars, {"a.tif": b"a"})
    reply = await ars.sync(GUID)
    assert reply.status_code == 400
    assert reply.json()["errorMessage"] == "No writeable share for asset found"


async def test_erda_failures_end_in_erda_failed_and_resync_recovers(ars: Ars) -> None:
    """Three failed jobs make the asset ERDA_FAILED with a message; synchronize again then succeeds."""
    ars.emulator.update_faults({"erda_fail_next": 3})
    await ars.create(GUID)
    await ars.upload(GUID, "a.tif", b"abc")
    await ars.sync(GUID)
    for _ in range(2):
        assert ars.emulator.erda_tick().failed == 1
        assert (await ars.status(GUID)).json()["status"] == "ASSET_RECEIVED"
    ars.emulator.erda_tick()
    failed = (await ars.status(GUID)).json()
    assert failed["status"] == "ERDA_FAILED"
    assert failed["error_message"]
    assert failed["error_timestamp"]
    assert failed["share_allocation_mb"] == 10
    assert ars.emulator.erda_tick() == TickResult()
    only_failed = (await ars.client.get(f"{ARS}/assets/inprogress", params={"onlyFailed": "true"})).json()
    assert [i["asset_guid"] for i in only_failed] == [GUID]
    assert (await ars.sync(GUID)).status_code == 204
    assert (await ars.status(GUID)).json()["status"] == "ASSET_RECEIVED"
    ars.emulator.erda_tick()
    done = (await ars.status(GUID)).json()
    assert (done["status"], done["error_message"]) == ("ERDA_SYNCHRONISED", None)
    assert ars.emulator.erda_path(GUID, "a.tif").read_bytes() == b"abc"
    assert ars.emulator.stats().erda_sync_failures == 3


async def test_stuck_asset_received_never_progresses(ars: Ars) -> None:
    """With stuck_asset_received the queued share is never processed; clearing it lets the job run."""
    ars.emulator.update_faults({"stuck_asset_received": True})
    await ars.create(GUID)
    await ars.upload(GUID, "a.tif", b"abc")
    await ars.sync(GUID)
    for _ in range(5):
        ars.emulator.erda_tick()
    stuck = (await ars.status(GUID)).json()
    assert (stuck["status"], stuck["share_allocation_mb"]) == ("ASSET_RECEIVED", 10)
    ars.emulator.update_faults({"stuck_asset_received": False})
    ars.emulator.erda_tick()
    assert (await ars.status(GUID)).json()["status"] == "ERDA_SYNCHRONISED"


async def test_legacy_completed_status(settings: EmulatorSettings) -> None:
    """legacy_completed_status reports a finished sync as COMPLETED."""
    async with open_ars(msgspec.structs.replace(settings, legacy_completed_status=True)) as ars:
        await _synced_asset(ars, {"a.tif": b"a"})
        assert (await ars.status(GUID)).json()["status"] == "COMPLETED"


async def test_create_share_reopens_with_erda_files(ars: Ars) -> None:
    """createShare re-opens a synced asset with its ERDA files; a new file then syncs as UPDATE_ASSET."""
    await _synced_asset(ars, {"a.tif": b"first"})
    reply = await ars.client.post(f"{SHARE}/createShare", json=_creation(allocation_mb=5))
    assert reply.status_code == 200
    info = reply.json()
    assert info["http_allocation_status"] == "SUCCESS"
    assert info["path"] == f"/assetfiles/test-institution/test-collection/{GUID}/"
    assert {"all_allocated_storage_mb", "parent_size_mb"} <= info.keys()
    assert ars.emulator.share_path(GUID, "a.tif").read_bytes() == b"first"
    reopened = (await ars.status(GUID)).json()
    assert (reopened["status"], reopened["share_allocation_mb"]) == ("ERDA_SYNCHRONISED", 5)
    listed = (await ars.client.get(f"{ARS}/assets/inprogress")).json()
    assert [(i["asset_guid"], i["status"]) for i in listed] == [(GUID, "ERDA_SYNCHRONISED")]
    await ars.upload(GUID, "b.jpg", b"second")
    await ars.sync(GUID)
    ars.emulator.erda_tick()
    assert ars.emulator.erda_path(GUID, "b.jpg").read_bytes() == b"second"
    assert ars.emulator.erda_path(GUID, "a.tif").read_bytes() == b"first"
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert (events[-1]["event"], events[-1]["change_list"]) == ("UPDATE_ASSET", ["FILE_ADDED"])


async def test_create_share_refusals(ars: Ars) -> None:
    """createShare refuses bad bodies, unknown assets, open shares and reports allocation problems in-body."""
    assert (await ars.client.post(f"{SHARE}/createShare", json={"users": []})).json()["errorMessage"] == (
        "You have to provide users and an asset in this call"
    )
    reply = await ars.client.post(f"{SHARE}/createShare", json=_creation(allocation_mb=0))
    assert reply.json()["errorMessage"] == "Allocation must be a positive integer"
    reply = await ars.client.post(f"{SHARE}/createShare", json=_creation())
    assert (reply.status_code, reply.json()["errorCode"]) == (400, "FORBIDDEN")
    assert reply.json()["errorMessage"] == f"Asset [{GUID}] was not found"
    assert "body" not in reply.json()


async def test_create_share_checked_out_and_allocation_too_small(settings: EmulatorSettings) -> None:
    """An open share is "already checked out"; an allocation below the ERDA files is BAD_REQUEST in a 200."""
    async with open_ars(msgspec.structs.replace(settings, share_dedup_s=0)) as ars:
        await ars.create(GUID)
        reply = await ars.client.post(f"{SHARE}/createShare", json=_creation())
        assert reply.json()["errorMessage"] == "Asset is already checked out"
        await ars.upload(GUID, "a.tif", b"x" * 2_000_000, size_mb=2)
        await ars.sync(GUID)
        ars.emulator.erda_tick()
        reply = await ars.client.post(f"{SHARE}/createShare", json=_creation(allocation_mb=1))
        assert reply.status_code == 200
        assert reply.json()["http_allocation_status"] == "BAD_REQUEST"
        assert reply.json()["allocation_status_text"] == (
            "Total size of existing asset files (and parent folder), exceeds requested allocation"
        )
        ars.emulator.update_faults({"disk_full": True})
        reply = await ars.client.post(f"{SHARE}/createShare", json=_creation(allocation_mb=3))
        assert (reply.status_code, reply.json()["http_allocation_status"]) == (200, "DISK_FULL")


async def test_create_share_dedup_blocks_retries_after_a_refusal(ars: Ars) -> None:
    """After createShare threw ("already checked out"), the next createShare is blocked by the de-dup cache."""
    await ars.create(GUID)
    await ars.client.post(f"{SHARE}/createShare", json=_creation())
    reply = await ars.client.post(f"{SHARE}/createShare", json=_creation())
    assert reply.json()["errorMessage"] == f"A share with guid {GUID} is already in the process of creation"


async def test_delete_share(ars: Ars) -> None:
    """deleteShare discards an open share (200), refuses a queued one (400) and 404s when none is open."""
    await ars.create(GUID)
    await ars.upload(GUID, "a.tif", b"x")
    await ars.sync(GUID)
    reply = await ars.client.delete(f"{SHARE}/deleteShare")
    assert (reply.status_code, reply.json()["allocation_status_text"]) == (400, "Share is synchronizing")
    ars.emulator.update_faults({"erda_fail_next": 3})
    for _ in range(3):
        ars.emulator.erda_tick()
    reply = await ars.client.delete(f"{SHARE}/deleteShare")
    assert (reply.status_code, reply.json()["http_allocation_status"]) == (200, "SUCCESS")
    assert reply.json()["allocation_status_text"] == "Share deleted"
    status = (await ars.status(GUID)).json()
    assert (status["status"], status["share_allocation_mb"]) == ("ERDA_FAILED", None)
    reply = await ars.client.delete(f"{SHARE}/deleteShare")
    assert (reply.status_code, reply.json()["http_allocation_status"]) == (404, "SHARE_NOT_FOUND")
    assert (await ars.client.get(f"{FP}/assets/{GUID}/files")).json() == []


async def test_change_allocation(ars: Ars) -> None:
    """changeAllocation resizes an open share and refuses to go below the bytes already in it."""
    await ars.create(GUID, allocation_mb=5)
    await ars.upload(GUID, "a.tif", b"x" * 2_000_000, size_mb=2)
    reply = await ars.client.post(f"{SHARE}/changeAllocation", json={"asset_guid": GUID, "new_allocation_mb": 1})
    assert (reply.status_code, reply.json()["http_allocation_status"]) == (200, "BAD_REQUEST")
    reply = await ars.client.post(f"{SHARE}/changeAllocation", json={"asset_guid": GUID, "new_allocation_mb": 8})
    assert reply.json()["http_allocation_status"] == "SUCCESS"
    assert (await ars.status(GUID)).json()["share_allocation_mb"] == 8
    reply = await ars.client.post(f"{SHARE}/changeAllocation", json={"asset_guid": GUID, "new_allocation_mb": 10**9})
    assert reply.json()["http_allocation_status"] == "DISK_FULL"


async def test_derivative_share_gets_parent_files(ars: Ars) -> None:
    """A child asset's share holds the parent's ERDA files under parents/; they are not synced as its own."""
    await _synced_asset(ars, {"a.tif": b"parent"})
    child = "asset-0001-jpg"
    reply = await ars.create(child, parent_guids=[GUID], file_formats=["JPEG"])
    assert reply.status_code == 200
    assert ars.emulator.share_path(child, f"parents/{GUID}/a.tif").read_bytes() == b"parent"
    status = (await ars.status(child)).json()
    assert status["parent_guid"] == [GUID]
    await ars.upload(child, "a.jpg", b"child")
    await ars.sync(child)
    ars.emulator.erda_tick()
    assert ars.emulator.erda_path(child, "a.jpg").read_bytes() == b"child"
    assert not ars.emulator.erda_path(child, f"parents/{GUID}/a.tif").exists()


async def test_child_of_parent_without_erda_files_fails(ars: Ars) -> None:
    """A child whose parent has no files in ERDA cannot be created (5xx, nothing stored)."""
    await ars.create(GUID)
    reply = await ars.create("child", parent_guids=[GUID])
    assert reply.status_code == 500
    assert (await ars.status("child")).status_code == 404


async def test_tick_endpoint_and_shares_list(ars: Ars) -> None:
    """POST /_emulator/tick runs the job; GET /shares lists open shares."""
    await ars.create(GUID)
    shares = (await ars.client.get(f"{FP}/shares")).json()
    assert [s["assets"][0]["asset_guid"] for s in shares] == [GUID]
    await ars.sync(GUID)
    reply = await ars.client.post("/_emulator/tick")
    assert reply.json() == {"processed": 1, "synced": 1, "failed": 0}
    assert (await ars.client.get(f"{FP}/shares")).json() == []


async def test_reopen_after_delete_share_of_a_never_synced_asset(ars: Ars) -> None:
    """A METADATA_RECEIVED asset whose share was discarded gets a writeable, empty share folder from createShare."""
    await ars.create(GUID)
    assert (await ars.upload(GUID, "a.tif", b"discarded")).status_code == 200
    assert (await ars.delete_share(GUID)).status_code == 200
    assert not ars.emulator.data_dir.joinpath("shares/test-institution/test-collection", GUID).exists()
    reply = await ars.open_share(GUID, allocation_mb=5)
    assert (reply.status_code, reply.json()["http_allocation_status"]) == (200, "SUCCESS")
    assert ars.emulator.share_path(GUID, "").is_dir()
    status = (await ars.status(GUID)).json()
    assert (status["status"], status["share_allocation_mb"]) == ("METADATA_RECEIVED", 5)
    assert await ars.files(GUID) == []
    assert (await ars.upload(GUID, "b.tif", b"kept")).status_code == 200
    assert (await ars.sync(GUID)).status_code == 204
    assert ars.emulator.erda_tick().synced == 1
    assert ars.emulator.erda_path(GUID, "b.tif").read_bytes() == b"kept"
    assert not ars.emulator.erda_path(GUID, "a.tif").exists()
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert [e["event"] for e in events] == ["CREATE_ASSET_METADATA", "CREATE_ASSET"]
    assert ars.emulator.state()["allocated_mb"] == 0


async def test_reopen_after_delete_share_holds_the_erda_files_again(ars: Ars) -> None:
    """After a discarded re-open (a synced file deleted, a new one added) createShare holds every ERDA file again."""
    await _synced_asset(ars, {"a.tif": b"first", "raw/b.cr3": b"raw"})
    assert (await ars.open_share(GUID)).json()["http_allocation_status"] == "SUCCESS"
    async with ars.admin() as admin:
        url = f"{FP}/assetfiles/test-institution/test-collection/{GUID}/a.tif"
        assert (await admin.delete(url)).status_code == 204
    assert (await ars.upload(GUID, "c.jpg", b"dropped")).status_code == 200
    assert (await ars.delete_share(GUID)).status_code == 200
    files = {f["path"].split(f"{GUID}/", 1)[1]: f for f in await ars.files(GUID)}
    assert {name: (f["syncStatus"], f["deleteAfterSync"]) for name, f in files.items()} == {
        "a.tif": ("SYNCHRONIZED", False),
        "raw/b.cr3": ("SYNCHRONIZED", False),
    }
    assert (await ars.open_share(GUID)).json()["http_allocation_status"] == "SUCCESS"
    assert ars.emulator.share_path(GUID, "a.tif").read_bytes() == b"first"
    assert ars.emulator.share_path(GUID, "raw/b.cr3").read_bytes() == b"raw"
    assert not ars.emulator.share_path(GUID, "c.jpg").exists()
    assert (await ars.upload(GUID, "d.jpg", b"new")).status_code == 200
    assert (await ars.sync(GUID)).status_code == 204
    ars.emulator.erda_tick()
    assert ars.emulator.erda_path(GUID, "a.tif").read_bytes() == b"first"
    assert ars.emulator.erda_path(GUID, "d.jpg").read_bytes() == b"new"
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert (events[-1]["event"], events[-1]["change_list"]) == ("UPDATE_ASSET", ["FILE_ADDED"])
    assert ars.emulator.state()["allocated_mb"] == 0
