"""The asset actor against a scripted ARS: its decisions on every kind of answer, and who else they affect.

A site-wide "no" pauses the lane (never a quarantine), a group's "no" holds that group, our own late create
is recognised as ours, ARS's de-dup block is waited out, CRC mismatches are retried before a quarantine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
import trio.testing

from actor_support import Harness, harness
from integration.actors import AssetDeps, drive_asset
from integration.adapters.ars import ArsAsset, ArsFile, AssetStatus, CreatedAsset, ShareInfo
from integration.adapters.files import crc32_of
from integration.domain import FileKind, FileRecord
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsCredentialsRefused,
    ArsDiskFull,
    ArsShareClosed,
    GroupHeld,
)
from integration.state_machines import AssetState
from integration.store import AssetRecord, NewAsset

ME = "service-account-integration"


def guid_of(n: int) -> str:
    return f"7e8-8-08-0c-1b-15-2-003-04-000-{n:06x}"


class FakeArs:
    """Just enough of ArsClient: an ARS that holds assets and files, with scripted refusals per operation."""

    def __init__(self) -> None:
        self.assets: dict[str, ArsAsset] = {}
        self.files: dict[str, dict[str, int]] = {}
        self.refusals: dict[str, list[Exception]] = {}  # operation -> errors raised (one per call) before success
        self.calls: dict[str, int] = {}
        self.closed: set[str] = set()  # assets whose share is closed (synced or discarded)

    def _call(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        errors = self.refusals.get(operation)
        if errors:
            raise errors.pop(0)

    def hold(self, guid: str, *, created_by: str = ME, institution: str = "test-institution") -> None:
        self.assets[guid] = ArsAsset(
            asset_guid=guid,
            institution=institution,
            collection="test-collection",
            workstation="test-workstation",
            pipeline="test-pipeline",
            internal_status="METADATA_RECEIVED",
            created_by=created_by,
        )

    async def username(self) -> str:
        return ME

    async def get_status(self, guid: str) -> AssetStatus | None:
        self._call("get_status")
        if guid not in self.assets:
            return None
        share = None if guid in self.closed else 2
        return AssetStatus(asset_guid=guid, status=self.assets[guid].internal_status or "", share_allocation_mb=share)

    async def get_asset(self, guid: str) -> ArsAsset | None:
        self._call("get_asset")
        return self.assets.get(guid)

    async def create_asset(self, body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
        guid = str(body["asset_guid"])
        self._call("create_asset")
        if guid in self.assets:
            raise ArsConflict("exists", status_code=400, error_message=f"Asset {guid} already exists", kind="exists")
        self.hold(guid)
        return CreatedAsset(guid=guid, share_path="/x", allocated_mb=allocation_mb)

    async def update_asset(self, guid: str, body: dict[str, Any]) -> None:
        self._call("update_asset")

    async def upload_file(self, *, guid: str, name: str, crc32: int, **kwargs: Any) -> None:
        self._call("upload_file")
        self.files.setdefault(guid, {})[name] = crc32

    async def open_share(self, guid: str, **kwargs: Any) -> ShareInfo:
        self._call("open_share")
        self.closed.discard(guid)
        return ShareInfo(path="/x", allocated_mb=int(kwargs["allocation_mb"]))

    async def list_files(self, guid: str) -> list[ArsFile]:
        self._call("list_files")
        return [
            ArsFile(path=f"/i/c/{guid}/{name}", size_bytes=1, crc=crc, sync_status="NEW_FILE")
            for name, crc in self.files.get(guid, {}).items()
        ]

    async def synchronize(self, guid: str, **kwargs: Any) -> None:
        self._call("synchronize")


async def record(h: Harness, guid: str, *, workstation: str = "test-workstation", local: Path | None = None) -> None:
    """Record an ingested asset whose one image file exists locally (unless ``local`` says otherwise)."""
    path = local or (Path(h.config.storage.root) / guid / f"{guid}.tif")
    if local is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"II*\x00image")
    metadata = {
        "asset_guid": guid,
        "institution": "test-institution",
        "collection": "test-collection",
        "pipeline_name": "test-pipeline",
        "workstation_name": workstation,
        "file_format": "tif",
        "date_asset_taken": "2024-08-08T12:27:21+02:00",
        "digitiser": "jdoe",
    }
    image = FileRecord(name=f"{guid}.tif", kind=FileKind.IMAGE, size=9, crc32=12345, local_path=str(path))
    await h.store.assets.record_ingested(
        NewAsset(
            guid=guid,
            pipeline="test-pipeline",
            institution="test-institution",
            collection="test-collection",
            workstation=workstation,
            session="/n/s",
            local_dir=str(path.parent),
            allocation_mb=2,
            metadata_json=json.dumps(metadata).encode(),
            files=((image, f"/n/s/{guid}.tif"),),
        ),
        actor="test",
    )


def deps(h: Harness, ars: FakeArs) -> AssetDeps:
    return AssetDeps(store=h.store, ars=ars, lanes=h.lanes, config=h.config, clock=trio.current_time)  # type: ignore[arg-type]


async def drive(h: Harness, ars: FakeArs, guid: str) -> AssetRecord:
    await drive_asset(guid, deps(h, ars))
    found = await h.store.assets.get(guid)
    assert found is not None
    return found


async def test_already_exists_answered_to_our_retried_post_is_ours(tmp_path: Path) -> None:
    """POST timed out, ARS committed late, status said 404, the retried POST got 400 "already exists": ours."""
    ars = FakeArs()
    async with harness(tmp_path) as h:
        await record(h, guid_of(2))
        await h.store.assets.open_intent(guid_of(2), "create", expected=AssetState.INGESTED, actor="crashed")
        real_get_asset = ars.get_asset
        lookups = {"n": 0}

        async def late_get_asset(guid: str) -> ArsAsset | None:
            lookups["n"] += 1
            if lookups["n"] == 1:
                return None  # not committed yet when we first look
            ars.hold(guid)  # committed by now: the POST will say "already exists"
            return await real_get_asset(guid)

        async def committed_meanwhile(body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
            ars.hold(str(body["asset_guid"]))
            raise ArsConflict("exists", status_code=400, error_message="Asset already exists", kind="exists")

        ars.get_asset = late_get_asset  # type: ignore[method-assign]
        ars.create_asset = committed_meanwhile  # type: ignore[method-assign]
        result = await drive(h, ars, guid_of(2))
        assert result.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert result.in_ars
        [create] = [
            e for e in await h.store.assets.events(guid_of(2)) if e.trigger == "create" and e.kind == "transition"
        ]
        assert "our own earlier create, committed late" in create.reason


async def test_someone_elses_asset_under_our_guid_is_quarantined(tmp_path: Path) -> None:
    """ARS holds an asset with our GUID from another institution and creator: quarantined, nothing sent."""
    ars = FakeArs()
    ars.hold(guid_of(3), created_by="service-account-other", institution="other-institution")
    async with harness(tmp_path) as h:
        await record(h, guid_of(3))
        result = await drive(h, ars, guid_of(3))
        assert result.state is AssetState.QUARANTINED
        assert "another asset with the GUID" in result.reason
        assert "other-institution" in result.reason
        assert ars.calls.get("upload_file", 0) == 0


async def test_already_being_processed_is_waited_out_then_created(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """403 "already being processed" with no asset in ARS: only the status is asked during the window, then a POST."""
    ars = FakeArs()
    blocked = ArsConflict("blocked", status_code=403, error_message="already being processed", kind="being_processed")
    ars.refusals["create_asset"] = [blocked]
    async with harness(tmp_path, ars={"create_dedup_window_s": 300.0}) as h:
        await record(h, guid_of(4))
        first = await drive(h, ars, guid_of(4))
        assert first.state is AssetState.INGESTED
        assert first.waiting_since is not None
        assert first.wake is not None
        assert first.wake.due is not None
        assert first.attempts == 0
        await trio.sleep(100)
        second = await drive(h, ars, guid_of(4))
        assert second.state is AssetState.INGESTED
        assert ars.calls["create_asset"] == 1, "no POST inside ARS's de-dup window"
        await trio.sleep(250)
        third = await drive(h, ars, guid_of(4))
        assert third.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert ars.calls["create_asset"] == 2


async def test_refused_credentials_pause_the_lane_and_quarantine_nothing(tmp_path: Path) -> None:
    """A wrong secret is a site problem: the ARS lane pauses with an actionable reason; no asset is quarantined."""
    ars = FakeArs()
    refused = ArsCredentialsRefused("Keycloak refused the client credentials (401): check ars.client_id and the secret")
    ars.refusals["create_asset"] = [refused]
    async with harness(tmp_path) as h:
        for n in (5, 6, 7):
            await record(h, guid_of(n))
        first = await drive(h, ars, guid_of(5))
        assert first.state is AssetState.PAUSED
        assert h.lanes.ars.paused
        assert "check ars.client_id" in h.lanes.ars.reason
        for n in (6, 7):
            other = await drive(h, ars, guid_of(n))
            assert other.state is AssetState.PAUSED
            assert other.wake is not None
            assert other.wake.kind == "wait"
            assert other.wake.lane == "ars"
        assert ars.calls["create_asset"] == 1, "parked assets do not ask ARS while its lane is paused"
        counts = await h.store.assets.counts_by_state()
        assert counts == {"paused": 3}


async def test_a_group_refusal_holds_that_group_and_the_others_go_on(tmp_path: Path) -> None:
    """A workstation out of service holds its assets (one probes); other workstations' assets go on."""
    ars = FakeArs()
    out = GroupHeld("Workstation [OUT_OF_SERVICE] is marked as out of service", group_kind="workstation")
    ars.refusals["create_asset"] = [out]
    async with harness(tmp_path) as h:
        await record(h, guid_of(8), workstation="test-workstation-2")
        await record(h, guid_of(9), workstation="test-workstation-2")
        await record(h, guid_of(10), workstation="test-workstation")
        held = await drive(h, ars, guid_of(8))
        assert held.state is AssetState.INGESTED
        key = "hold:workstation:test-institution/test-workstation-2"
        assert key in h.lanes.holds
        assert h.lanes.holds[key].probe_guid == guid_of(8)
        waiting = await drive(h, ars, guid_of(9))
        assert waiting.wake is not None
        assert waiting.wake.lane == key
        assert ars.calls["create_asset"] == 1
        other = await drive(h, ars, guid_of(10))
        assert other.state in (AssetState.UPLOADED, AssetState.SYNCING)
        probe = await drive(h, ars, guid_of(8))  # the probe's own retry succeeds (back in service)
        assert probe.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert key not in h.lanes.holds
        released = await h.store.assets.get(guid_of(9))
        assert released is not None
        assert released.wake is not None
        assert released.wake.kind == "dispatch"


async def test_disk_full_pauses_the_lane_once_and_only_the_probe_retries(tmp_path: Path) -> None:
    """DISK_FULL: one lane pause; its probe asset's failed retries grow the interval instead of flapping."""
    ars = FakeArs()
    full = [ArsDiskFull("ARS has no disk space (DISK_FULL, 0 MB remaining)", remaining_mb=0) for _ in range(4)]
    ars.refusals["create_asset"] = full
    async with harness(tmp_path, lanes={"probe_initial_s": 1.0, "probe_max_s": 60.0, "needs_human_after": 3}) as h:
        for n in range(11, 15):
            await record(h, guid_of(n))
        await drive(h, ars, guid_of(11))
        for n in range(12, 15):
            await drive(h, ars, guid_of(n))
        lane = h.lanes.ars
        assert lane.paused
        assert lane.probe_guid == guid_of(11)
        intervals = []
        for _ in range(3):
            lane.grant_probe(guid_of(11))
            before = trio.current_time()
            await drive(h, ars, guid_of(11))
            assert lane.next_probe is not None
            intervals.append(lane.next_probe - before)
        assert intervals == sorted(intervals)
        assert intervals[0] < intervals[-1]
        assert lane.pauses == 1
        assert lane.needs_human
        assert ars.calls["create_asset"] == 4
        lane.grant_probe(guid_of(11))
        done = await drive(h, ars, guid_of(11))
        assert done.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert not lane.paused
        for n in range(12, 15):
            record_n = await h.store.assets.get(guid_of(n))
            assert record_n is not None
            assert record_n.wake is not None
            assert record_n.wake.kind == "dispatch"
        pauses = [e for e in await h.store.assets.events(guid_of(12)) if e.trigger in ("pause", "resume")]
        assert len(pauses) == 1, "a waiting asset is paused once, not at every probe"


async def test_crc_mismatches_are_retried_with_back_off_before_a_quarantine(tmp_path: Path) -> None:
    """507s are retried (counted, with a wake-up), the asset uploads once they stop; past the limit: quarantined."""
    ars = FakeArs()
    ars.refusals["upload_file"] = [ArsCrcMismatch("CRC-32 mismatch") for _ in range(2)]
    async with harness(tmp_path, ars={"crc_mismatch_retries": 3}) as h:
        await record(h, guid_of(16), local=None)
        path = Path(h.config.storage.root) / guid_of(16) / f"{guid_of(16)}.tif"
        crc = crc32_of(path).crc32
        await h.store.run(lambda c: c.execute("UPDATE files SET crc32 = ?", (crc,)))
        first = await drive(h, ars, guid_of(16))
        assert first.state is AssetState.CREATED_IN_ARS
        assert first.crc_mismatches == 1
        assert first.wake is not None
        second = await drive(h, ars, guid_of(16))
        assert second.crc_mismatches == 2
        third = await drive(h, ars, guid_of(16))
        assert third.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert third.crc_mismatches == 0
        await record(h, guid_of(17))
        path17 = Path(h.config.storage.root) / guid_of(17) / f"{guid_of(17)}.tif"
        crc17 = crc32_of(path17).crc32
        await h.store.run(lambda c: c.execute("UPDATE files SET crc32 = ? WHERE guid = ?", (crc17, guid_of(17))))
        ars.refusals["upload_file"] = [ArsCrcMismatch("CRC-32 mismatch") for _ in range(10)]
        for _ in range(4):
            result = await drive(h, ars, guid_of(17))
        assert result.state is AssetState.QUARANTINED
        assert "4 times in a row" in result.reason
        assert "exists in ARS" in result.reason
        assert "integration retry" in result.reason


async def test_a_closed_share_is_opened_again_before_uploading(tmp_path: Path) -> None:
    """ "No writeable directory" on upload: the actor opens the share again and uploads, nothing quarantined."""
    ars = FakeArs()
    ars.refusals["upload_file"] = [ArsShareClosed("no share", status_code=400)]
    ars.closed.add(guid_of(18))
    async with harness(tmp_path) as h:
        await record(h, guid_of(18))
        result = await drive(h, ars, guid_of(18))
        assert result.state in (AssetState.UPLOADED, AssetState.SYNCING)
        assert ars.calls["open_share"] == 1


async def test_a_vanished_local_copy_is_explained(tmp_path: Path) -> None:
    """A local copy that disappeared is quarantined with its path named, after an unconfirmed create is reconciled."""
    ars = FakeArs()
    ars.hold(guid_of(19))
    async with harness(tmp_path) as h:
        await record(h, guid_of(19), local=Path("/nowhere") / f"{guid_of(19)}.tif")
        await h.store.assets.open_intent(guid_of(19), "create", expected=AssetState.INGESTED, actor="crashed")
        result = await drive(h, ars, guid_of(19))
        assert ars.calls.get("create_asset", 0) == 0
        assert result.state is AssetState.QUARANTINED
        assert "/nowhere" in result.reason
        assert "exists in ARS" in result.reason


async def test_an_unexpected_error_is_retried_not_a_crash(tmp_path: Path) -> None:
    """A bug in a step (any exception) is logged and the asset retried with back-off; the budget then fails it."""
    ars = FakeArs()
    ars.refusals["create_asset"] = [ZeroDivisionError("bug")] * 10
    async with harness(tmp_path, retry={"attempts": 2, "initial_s": 0.05, "max_s": 0.2, "jitter_s": 0.0}) as h:
        await record(h, guid_of(20))
        first = await drive(h, ars, guid_of(20))
        assert first.state is AssetState.INGESTED
        assert first.attempts == 1
        assert first.wake is not None
        assert first.wake.kind == "dispatch"
        await drive(h, ars, guid_of(20))
        last = await drive(h, ars, guid_of(20))
        assert last.state is AssetState.FAILED
        assert "ZeroDivisionError" in last.reason
