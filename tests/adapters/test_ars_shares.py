"""ArsClient's share operations and the metadata update, against the fake file proxy (ars-api.md §4.1, §4.2, §3.1.2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from adapters.test_ars_fake import GUID, USER, FakeArs, answering, client_for, error, share_answer
from integration.adapters.ars import ArsClient, ShareInfo
from integration.errors import (
    ArsConflict,
    ArsDiskFull,
    ArsForbidden,
    ArsRejected,
    ArsRouteNotFound,
    AssetWaits,
    GroupHeld,
    Scope,
)

WHERE = {"institution": "NHMD", "collection": "Vascular plants"}
PATH = f"/assetfiles/NHMD/Vascular plants/{GUID}/"


@pytest.fixture
def fake() -> FakeArs:
    """A fresh fake ARS."""
    return FakeArs()


@pytest.fixture
async def ars(fake: FakeArs) -> AsyncIterator[ArsClient]:
    """An ArsClient talking to ``fake``."""
    async with client_for(fake) as client:
        yield client


# --- open_share -----------------------------------------------------------------------------------------------


async def test_open_share_opens_it_for_the_token_user(fake: FakeArs, ars: ArsClient) -> None:
    """createShare names the asset, its institution/collection and our token's user; the answer is a ShareInfo."""
    fake.add_asset(share_mb=None)
    share = await ars.open_share(GUID, **WHERE, allocation_mb=40)
    assert share == ShareInfo(path=PATH, allocated_mb=40)
    assert fake.share_requests == [
        {"assets": [{"asset_guid": GUID, **WHERE}], "users": [USER], "allocation_mb": 40},
    ]


async def test_open_share_already_open_is_a_checked_out_conflict(fake: FakeArs, ars: ArsClient) -> None:
    """The file proxy's "Asset is already checked out" raises ArsConflict(kind="checked_out")."""
    fake.add_asset(share_mb=5)
    with pytest.raises(ArsConflict) as caught:
        await ars.open_share(GUID, **WHERE, allocation_mb=40)
    assert (caught.value.kind, caught.value.status_code) == ("checked_out", 400)


async def test_open_share_on_a_full_disk_pauses_the_lane(fake: FakeArs, ars: ArsClient) -> None:
    """A 200 whose allocation says DISK_FULL with almost nothing free raises ArsDiskFull, never a success."""
    fake.add_asset(share_mb=None)
    fake.remaining_mb = 20
    with pytest.raises(ArsDiskFull) as caught:
        await ars.open_share(GUID, **WHERE, allocation_mb=40)
    assert (caught.value.remaining_mb, caught.value.requested_mb) == (20, 40)


async def test_open_share_too_big_for_what_is_free_waits(fake: FakeArs, ars: ArsClient) -> None:
    """DISK_FULL while ARS still has room for smaller assets makes only this asset wait."""
    fake.add_asset(share_mb=None)
    fake.remaining_mb = 3_000
    with pytest.raises(AssetWaits) as caught:
        await ars.open_share(GUID, **WHERE, allocation_mb=4_000)
    assert caught.value.retry_after_s == 300


async def test_open_share_smaller_than_the_files_is_rejected() -> None:
    """BAD_REQUEST "Total size of existing asset files ... exceeds requested allocation" raises ArsRejected."""
    text = "Total size of existing asset files (and parent folder), exceeds requested allocation"
    async with client_for(answering(share_answer(200, "BAD_REQUEST", text))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.open_share(GUID, **WHERE, allocation_mb=1)
    assert caught.value.error_message == text
    assert caught.value.scope is Scope.ASSET


async def test_open_share_during_the_creation_de_dup_waits() -> None:
    """ "A share with guid G is already in the process of creation" makes the asset wait 300 s."""
    answer = error(400, f"A share with guid {GUID} is already in the process of creation")
    async with client_for(answering(answer)) as client:
        with pytest.raises(AssetWaits) as caught:
            await client.open_share(GUID, **WHERE, allocation_mb=1)
    assert caught.value.retry_after_s == 300


async def test_open_share_after_a_lost_answer_is_settled_by_the_status(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """A 504 whose share was opened anyway is settled by the status: one createShare, no checked-out conflict."""
    fake.add_asset(share_mb=None)
    fake.commit_then_fail = True
    fake.script["create_share"] = [504]
    share = await ars.open_share(GUID, **WHERE, allocation_mb=40)
    assert share == ShareInfo(path=PATH, allocated_mb=40)
    assert (fake.hits["create_share"], fake.hits["status"]) == (1, 1)


async def test_open_share_without_write_rights_holds_the_collection(fake: FakeArs) -> None:
    """The file proxy's 400 FORBIDDEN "FORBIDDEN" (a missing right, granted per collection) holds the collection."""
    async with client_for(answering(error(400, "FORBIDDEN", "FORBIDDEN"))) as client:
        with pytest.raises(GroupHeld) as caught:
            await client.open_share(GUID, **WHERE, allocation_mb=1)
    assert caught.value.group_kind == "collection"


# --- delete_share, delete_file, list_share --------------------------------------------------------------------


async def test_delete_share_true_then_false(fake: FakeArs, ars: ArsClient) -> None:
    """deleteShare answers True when a share was closed, False ("No share found") when none is open."""
    fake.add_asset(share_mb=5)
    assert await ars.delete_share(GUID) is True
    assert fake.assets[GUID]["share_allocation_mb"] is None
    assert await ars.delete_share(GUID) is False


async def test_delete_share_while_synchronizing_waits(fake: FakeArs, ars: ArsClient) -> None:
    """400 "Share is synchronizing" (queued for ERDA) makes the asset wait, it is no rejection."""
    fake.add_asset(share_mb=5)
    await ars.synchronize(GUID, workstation="W", pipeline="P")
    with pytest.raises(AssetWaits) as caught:
        await ars.delete_share(GUID)
    assert caught.value.retry_after_s == 60


async def test_delete_file_needs_the_admin_role(fake: FakeArs, ars: ArsClient) -> None:
    """The 403 for deleting a file (dassco-admin only since FP 2.7.4) is ArsRejected for this asset, not site-wide."""
    fake.add_asset()
    fake.files[GUID]["old.jpg"] = b"x"
    with pytest.raises(ArsRejected) as caught:
        await ars.delete_file(**WHERE, guid=GUID, name="old.jpg")
    assert not isinstance(caught.value, ArsForbidden)
    assert caught.value.scope is Scope.ASSET
    assert "needs the dassco-admin role since file proxy 2.7.4" in str(caught.value)


async def test_delete_file_true_then_false_for_an_admin(fake: FakeArs, ars: ArsClient) -> None:
    """With the admin role a file is deleted (204: True); deleting it again finds nothing (404: False)."""
    fake.admin = True
    fake.add_asset()
    fake.files[GUID]["old.jpg"] = b"x"
    assert await ars.delete_file(**WHERE, guid=GUID, name="old.jpg") is True
    assert await ars.delete_file(**WHERE, guid=GUID, name="old.jpg") is False


async def test_list_share_names_the_assets_files_without_parents(fake: FakeArs, ars: ArsClient) -> None:
    """The share listing's URLs become file names; a derivative's parents/... files are left out."""
    fake.add_asset()
    fake.files[GUID].update({f"{GUID}.tif": b"a", f"{GUID}.dng": b"b"})
    fake.parent_files[GUID] = ["parents/parent-guid/parent.tif"]
    assert await ars.list_share(**WHERE, guid=GUID) == [f"{GUID}.tif", f"{GUID}.dng"]


async def test_list_share_without_a_share_is_empty(fake: FakeArs, ars: ArsClient) -> None:
    """With no open share the file proxy lists a folder that does not exist: no names, no error."""
    fake.add_asset(share_mb=None)
    assert await ars.list_share(**WHERE, guid=GUID) == []


async def test_list_share_not_found_is_rejected_not_a_wrong_url() -> None:
    """The file proxy's 404 NOT_FOUND envelope on a listing raises ArsRejected (reconcile), not ArsRouteNotFound."""
    async with client_for(answering(error(404, "Share directory doesnt exist", "NOT_FOUND"))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.list_share(**WHERE, guid=GUID)
    assert caught.value.error_message == "Share directory doesnt exist"


async def test_synchronize_during_a_large_upload_waits() -> None:
    """409 "Asset has active large file uploads" makes the asset wait 60 s."""
    async with client_for(answering(error(409, "Asset has active large file uploads", "CONFLICT"))) as client:
        with pytest.raises(AssetWaits) as caught:
            await client.synchronize(GUID, workstation="W", pipeline="P")
    assert caught.value.retry_after_s == 60


# --- update_asset ---------------------------------------------------------------------------------------------


async def test_update_asset_puts_the_full_record(fake: FakeArs, ars: ArsClient) -> None:
    """update_asset PUTs the whole body (a full replace) to the asset's own path."""
    fake.add_asset()
    body = {"asset_guid": GUID, **WHERE, "status": "WORKING_COPY", "pipeline": "P", "workstation": "W"}
    await ars.update_asset(GUID, body)
    assert fake.assets[GUID]["body"] == body


async def test_update_asset_for_another_guid_is_refused_locally(fake: FakeArs, ars: ArsClient) -> None:
    """A body naming another GUID is a programming error caught before anything is sent."""
    with pytest.raises(ValueError, match="asset_guid"):
        await ars.update_asset(GUID, {"asset_guid": "other"})
    assert fake.hits["update"] == 0


async def test_update_asset_during_specify_sync_waits(fake: FakeArs, ars: ArsClient) -> None:
    """403 "Asset is synchronising to specify" makes the asset wait instead of quarantining it."""
    fake.add_asset(status="SPECIFY_SYNC_SCHEDULED")
    with pytest.raises(AssetWaits) as caught:
        await ars.update_asset(GUID, {"asset_guid": GUID, **WHERE})
    assert caught.value.retry_after_s == 60


async def test_update_asset_with_an_unknown_workstation_holds_the_group() -> None:
    """400 "Workstation does not exist" on update holds the workstation's group."""
    async with client_for(answering(error(400, "Workstation does not exist"))) as client:
        with pytest.raises(GroupHeld) as caught:
            await client.update_asset(GUID, {"asset_guid": GUID, **WHERE})
    assert caught.value.group_kind == "workstation"


async def test_update_asset_is_retried_after_a_5xx(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """A full replace is idempotent: a 503 is retried and the record lands once."""
    fake.add_asset()
    fake.script["update"] = [503]
    await ars.update_asset(GUID, {"asset_guid": GUID, **WHERE})
    assert fake.hits["update"] == 2
    assert ars.statistics().retries == 1


async def test_unknown_file_proxy_route_for_delete_share_is_route_not_found() -> None:
    """A 404 without the file proxy's SHARE_NOT_FOUND body is a wrong URL, not "no share"."""
    async with client_for(answering(httpx.Response(404, text="<html>nginx</html>"))) as client:
        with pytest.raises(ArsRouteNotFound):
            await client.delete_share(GUID)
