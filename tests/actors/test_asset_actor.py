"""The asset actor against a scripted ARS: its decisions on every kind of answer, and who else they affect.

A site-wide "no" pauses the lane (never a quarantine), a group's "no" holds that group, our own late create
is recognised as ours, ARS's de-dup block is waited out, CRC mismatches are retried before a quarantine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing

from actor_support import harness
from asset_support import FakeArs, drive, guid_of, record
from integration.adapters.ars import ArsAsset, CreatedAsset
from integration.adapters.files import crc32_of
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsCredentialsRefused,
    ArsDiskFull,
    ArsShareClosed,
    GroupHeld,
)
from integration.state_machines import AssetState


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
        assert first.attempts == 1  # each refused POST counts: ARS's create may fail on its side for ever
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
        lane = h.lanes.lane("ars-space")
        assert lane.paused
        assert not h.lanes.ars.paused
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
        (tmp_path / "storage" / guid_of(19)).mkdir(parents=True)  # its folder is there, the file is not
        await record(h, guid_of(19), local=tmp_path / "storage" / guid_of(19) / f"{guid_of(19)}.tif")
        await h.store.assets.open_intent(guid_of(19), "create", expected=AssetState.INGESTED, actor="crashed")
        result = await drive(h, ars, guid_of(19))
        assert ars.calls.get("create_asset", 0) == 0
        assert result.state is AssetState.QUARANTINED
        assert f"{guid_of(19)}.tif is gone" in result.reason
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
