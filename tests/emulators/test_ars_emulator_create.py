"""Create, read, update and status of assets in the ARS emulator (spec §3.1, §3.2, §3.3)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from emulators.ars_support import ARS, Ars, asset_body, open_ars
from integration.emulators.ars import EmulatorSettings, FaultSettings

GUID = "asset-0001"


async def test_create_happy_path(ars: Ars) -> None:
    """A valid create answers 200 with the asset, an open share in httpInfo and METADATA_RECEIVED."""
    reply = await ars.create(GUID, allocation_mb=50)
    assert reply.status_code == 200
    body = reply.json()
    assert body["internal_status"] == "METADATA_RECEIVED"
    assert body["updateUser"] == "service-account-integration"
    assert body["asset_subject"] == "specimen"
    assert body["error_message"] is None
    info = body["httpInfo"]
    assert info["http_allocation_status"] == "SUCCESS"
    assert info["allocated_storage_mb"] == 50
    assert info["path"] == f"/assetfiles/test-institution/test-collection/{GUID}/"
    assert info["hostname"] == "http://ars"
    status = (await ars.status(GUID)).json()
    assert status == {
        "asset_guid": GUID,
        "parent_guid": [],
        "error_timestamp": None,
        "status": "METADATA_RECEIVED",
        "error_message": None,
        "share_allocation_mb": 50,
    }
    assert ars.emulator.stats().creates_committed_by_guid == {GUID: 1}


async def test_get_unknown_asset_is_204_and_status_unknown_is_404(ars: Ars) -> None:
    """An unknown GUID reads as 204 on GET asset and 404 with an empty body on status."""
    reply = await ars.client.get(f"{ARS}/assetmetadata/nope")
    assert reply.status_code == 204
    reply = await ars.status("nope")
    assert reply.status_code == 404
    assert reply.content == b""


async def test_get_asset_has_events(ars: Ars) -> None:
    """GET returns the stored asset with its CREATE_ASSET_METADATA event."""
    await ars.create(GUID)
    body = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}")).json()
    assert body["asset_guid"] == GUID
    assert [e["event"] for e in body["events"]] == ["CREATE_ASSET_METADATA"]
    assert body["events"][0]["pipeline"] == "test-pipeline"


def _error(reply: Any) -> tuple[int, str, str]:
    body = reply.json()
    return reply.status_code, body["errorCode"], body["errorMessage"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"asset_guid": ""}, (400, "BAD_REQUEST", "asset_guid cannot be null")),
        ({"asset_pid": None}, (400, "BAD_REQUEST", "asset_pid cannot be null")),
        ({"status": "NOPE"}, (400, "BAD_REQUEST", "Status cannot be null")),
        ({"parent_guids": [""]}, (400, "BAD_REQUEST", "Parent may not be an empty string")),
        ({"issues": [{"status": "x", "solved": False}]}, (400, "BAD_REQUEST", "Issue category cannot be null")),
        (
            {"collection": "other"},
            (403, "FORBIDDEN", "Collection other does not exist within institution test-institution"),
        ),
        (
            {"institution": "nhmd"},
            (403, "FORBIDDEN", "Collection test-collection does not exist within institution nhmd"),
        ),
        ({"digitiser": None}, (400, "BAD_REQUEST", "digitiser cannot be null when creating asset")),
        ({"pipeline": "p2"}, (400, "BAD_REQUEST", "Pipeline doesnt exist in this institution")),
        ({"workstation": "w9"}, (400, "BAD_REQUEST", "Workstation does not exist")),
        (
            {"workstation": "test-workstation-2"},
            (403, "FORBIDDEN", "Workstation [OUT_OF_SERVICE] is marked as out of service"),
        ),
        ({"file_formats": ["TIF", "PNG"]}, (400, "BAD_REQUEST", "PNG is not a valid file format")),
        ({"parent_guids": [GUID]}, (400, "BAD_REQUEST", "Asset cannot be its own parent")),
        ({"parent_guids": ["ghost"]}, (400, "BAD_REQUEST", "Parent doesnt exist")),
        (
            {"asset_specimen": [{"specimen": {"barcode": "007"}, "asset_preparation_type": "slide"}]},
            (400, "BAD_REQUEST", "Specimen test-institution.test-collection.007 doesn't exist"),
        ),
    ],
)
async def test_create_validation_errors(ars: Ars, fields: dict[str, Any], expected: tuple[int, str, str]) -> None:
    """Each invalid field is refused with the status, code and text of the real ARS; nothing is stored."""
    reply = await ars.create(GUID, **fields)
    assert _error(reply) == expected
    assert reply.json()["body"] is None
    assert ars.emulator.stats().creates_committed == 0


async def test_allocation_zero_or_missing(ars: Ars) -> None:
    """allocation_mb 0 or absent is 400, a non-integer is a plain 404."""
    reply = await ars.create(GUID, allocation_mb=0)
    assert _error(reply) == (400, "BAD_REQUEST", "Allocation cannot be 0")
    reply = await ars.client.post(f"{ARS}/assetmetadata", json=asset_body(GUID))
    assert _error(reply)[2] == "Allocation cannot be 0"
    reply = await ars.client.post(f"{ARS}/assetmetadata?allocation_mb=abc", json=asset_body(GUID))
    assert (reply.status_code, reply.content) == (404, b"")


async def test_duplicate_create_is_400_already_exists(ars: Ars) -> None:
    """Creating a GUID twice answers 400 "already exists" (creation is not idempotent)."""
    assert (await ars.create(GUID)).status_code == 200
    reply = await ars.create(GUID)
    assert _error(reply) == (400, "BAD_REQUEST", f"Asset {GUID} already exists")
    stats = ars.emulator.stats()
    assert (stats.creates_committed, stats.duplicate_create_rejections, stats.create_requests) == (1, 1, 2)


async def test_failed_create_blocks_the_guid_for_the_dedup_window(ars: Ars) -> None:
    """A create that fails after registering (negative allocation → 500) makes a retry get 403."""
    reply = await ars.create(GUID, allocation_mb=-1)
    assert reply.status_code == 500
    reply = await ars.create(GUID, allocation_mb=10)
    assert _error(reply) == (403, "FORBIDDEN", f"Asset {GUID} is already being processed")


async def test_dedup_window_is_configurable(settings: EmulatorSettings) -> None:
    """With create_dedup_s=0 a retry after a failed create goes through."""
    async with open_ars(msgspec.structs.replace(settings, create_dedup_s=0)) as ars:
        assert (await ars.create(GUID, allocation_mb=-1)).status_code == 500
        assert (await ars.create(GUID, allocation_mb=5)).status_code == 200


async def test_unknown_subject_is_a_server_error(ars: Ars) -> None:
    """An asset_subject outside the subject list fails at insert with a 5xx, as in ARS."""
    reply = await ars.create(GUID, asset_subject="planet")
    assert reply.status_code == 500


async def test_disk_full_returns_asset_body_and_stores_nothing(ars: Ars) -> None:
    """With disk_full, create answers 403 with the asset JSON and httpInfo DISK_FULL; no asset exists."""
    ars.emulator.update_faults({"disk_full": True})
    reply = await ars.create(GUID)
    assert reply.status_code == 403
    body = reply.json()
    assert body["asset_guid"] == GUID
    assert body["httpInfo"]["http_allocation_status"] == "DISK_FULL"
    assert body["httpInfo"]["allocated_storage_mb"] == 0
    assert body["httpInfo"]["path"] is None
    assert (await ars.status(GUID)).status_code == 404
    ars.emulator.update_faults({"disk_full": False})
    assert (await ars.create(GUID)).status_code == 200


async def test_allocation_beyond_total_storage_is_disk_full(settings: EmulatorSettings) -> None:
    """An allocation larger than the remaining share disk answers DISK_FULL."""
    async with open_ars(msgspec.structs.replace(settings, total_storage_mb=100)) as ars:
        assert ars.emulator.faults == FaultSettings()
        reply = await ars.create(GUID, allocation_mb=101)
        assert (reply.status_code, reply.json()["httpInfo"]["http_allocation_status"]) == (403, "DISK_FULL")
        assert (await ars.create(GUID, allocation_mb=100)).status_code == 200


async def test_specimens_are_attached_by_name_or_id(ars: Ars) -> None:
    """A specimen created with the E3 specimen API can be attached by barcode or specimen_id."""
    url = f"{ARS}/institutions/test-institution/collections/test-collection/specimen/00012345"
    reply = await ars.client.put(url, json={"barcode": "00012345", "preparation_types": ["slide"]})
    assert reply.status_code == 200
    specimen = reply.json()
    assert specimen["specimen_pid"] == "test-institution.test-collection.00012345"
    async with ars.anonymous() as anonymous:
        assert (await anonymous.get(url)).json() == specimen
    by_name = [{"specimen": {"barcode": "00012345"}, "asset_preparation_type": "slide"}]
    body = (await ars.create(GUID, asset_specimen=by_name)).json()
    assert body["asset_specimen"][0]["specimen"]["specimen_id"] == specimen["specimen_id"]
    by_id = [{"specimen_id": specimen["specimen_id"], "asset_preparation_type": "pinning"}]
    reply = await ars.create("asset-0002", asset_specimen=by_id)
    assert _error(reply)[2] == "Specimen has no preparation type that matches asset preparation type: pinning"


async def test_specimen_put_validation(ars: Ars) -> None:
    """A specimen needs a known preparation type and a barcode equal to the path."""
    url = f"{ARS}/institutions/test-institution/collections/test-collection/specimen/1"
    assert _error(await ars.client.put(url, json={"preparation_types": []}))[2] == (
        "a specimen must have at least one preparation_type"
    )
    assert (
        _error(await ars.client.put(url, json={"preparation_types": ["x"]}))[2] == "x is not a valid preparation_type"
    )
    assert (await ars.client.put(url, json={"barcode": "2", "preparation_types": ["slide"]})).status_code == 400
    assert (await ars.client.get(url.replace("/1", "/9"))).status_code == 404


async def test_update_is_a_full_replace(ars: Ars) -> None:
    """PUT replaces the writable fields: absent ones are cleared, asset_pid null keeps the old value."""
    await ars.create(GUID, mos_id="m-1")
    minimal = {k: v for k, v in asset_body(GUID).items() if k not in ("tags", "asset_pid")}
    reply = await ars.client.put(f"{ARS}/assetmetadata/{GUID}", json=minimal)
    assert reply.status_code == 200
    body = reply.json()
    assert (body["mos_id"], body["tags"], body["asset_pid"]) == (None, {}, f"https://pid.example/{GUID}")
    assert body["internal_status"] == "METADATA_RECEIVED"
    events = (await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")).json()
    assert [e["event"] for e in events] == ["CREATE_ASSET_METADATA", "UPDATE_ASSET_METADATA"]


async def test_update_errors(ars: Ars) -> None:
    """PUT refuses a GUID mismatch, an unknown asset and unlocking."""
    reply = await ars.client.put(f"{ARS}/assetmetadata/other", json=asset_body(GUID))
    assert _error(reply)[2] == "asset_guid in URL must match asset_guid in POST-message"
    reply = await ars.client.put(f"{ARS}/assetmetadata/{GUID}", json=asset_body(GUID))
    assert _error(reply)[2] == f"Asset {GUID} does not exist"
    await ars.create(GUID, asset_locked=True)
    reply = await ars.client.put(f"{ARS}/assetmetadata/{GUID}", json=asset_body(GUID, asset_locked=False))
    assert _error(reply) == (403, "FORBIDDEN", "Cannot unlock using updateAsset API, use dedicated API for unlocking")


async def test_reference_data(ars: Ars) -> None:
    """The seeded institution, collection, pipeline, workstations and lists are readable."""
    assert (await ars.client.get(f"{ARS}/institutions")).json() == [
        {"name": "test-institution", "roleRestrictions": []}
    ]
    assert (await ars.client.get(f"{ARS}/institutions/nope")).status_code == 204
    base = f"{ARS}/institutions/test-institution"
    assert [c["name"] for c in (await ars.client.get(f"{base}/collections")).json()] == ["test-collection"]
    assert [p["name"] for p in (await ars.client.get(f"{base}/pipelines")).json()] == ["test-pipeline"]
    stations = {w["name"]: w["status"] for w in (await ars.client.get(f"{base}/workstations")).json()}
    assert stations == {"test-workstation": "IN_SERVICE", "test-workstation-2": "OUT_OF_SERVICE"}
    formats = (await ars.client.get(f"{ARS}/lists/fileformats")).json()
    assert formats == ["TIF", "JPEG", "RAW", "RAF", "CR3", "DNG", "TXT"]
    assert "WORKING_COPY" in (await ars.client.get(f"{ARS}/lists/statuses")).json()
    assert (await ars.client.get(f"{ARS}/lists/preparationtypes")).json() == ["slide", "pinning"]


async def test_in_progress_lists_open_work(ars: Ars) -> None:
    """inprogress lists METADATA_RECEIVED assets; onlyFailed keeps only failures."""
    await ars.create(GUID)
    listed = (await ars.client.get(f"{ARS}/assets/inprogress")).json()
    assert [(i["asset_guid"], i["status"], i["parent_guid"]) for i in listed] == [(GUID, "METADATA_RECEIVED", None)]
    failed = (await ars.client.get(f"{ARS}/assets/inprogress", params={"onlyFailed": "true"})).json()
    assert failed == []


async def test_seeded_issue_category_test_is_accepted(ars: Ars) -> None:
    """The issue category "test" is seeded (listed, accepted on create); an unregistered one is refused."""
    assert (await ars.client.get(f"{ARS}/lists/issuecategories")).json() == ["test"]
    issue = {"category": "test", "name": "blurry", "status": "open", "solved": False}
    reply = await ars.create(GUID, issues=[issue])
    assert reply.status_code == 200
    assert reply.json()["issues"][0]["category"] == "test"
    reply = await ars.create("asset-0002", issues=[{**issue, "category": "nope"}])
    assert _error(reply) == (400, "BAD_REQUEST", "Issue category doesnt exists")
