"""The asset actor keeps each failure in its scope: what one asset meets stays its own unless the site's health
probe confirms it, a full share disk stops only what needs new share space, and waits do not last forever."""

from __future__ import annotations

from pathlib import Path

import msgspec
import trio
import trio.testing

from actor_support import Harness, harness
from asset_support import FakeArs, deps, drive, guid_of, record
from integration.actors import _asset_actor
from integration.errors import (
    ArsConflict,
    ArsDiskFull,
    ArsForbidden,
    ArsShareClosed,
    ArsUnavailable,
    AssetWaits,
    GroupHeld,
)
from integration.state_machines import AssetState, AssetTrigger
from integration.store import AssetRecord


async def move_to(h: Harness, ars: FakeArs, guid: str, state: AssetState) -> None:
    """Put a recorded asset into ``state`` as if its earlier steps had run (ARS holds it and its files)."""
    ars.hold(guid)
    await h.store.assets.transition(
        guid, AssetTrigger.CREATE, expected=AssetState.INGESTED, reason="t", actor="t", updates={"in_ars": True}
    )
    if state is AssetState.UPLOADED:
        for stored in await h.store.assets.files(guid):
            ars.files.setdefault(guid, {})[stored.record.name] = stored.record.crc32
        await h.store.assets.transition(
            guid,
            AssetTrigger.UPLOAD,
            expected=AssetState.CREATED_IN_ARS,
            reason="t",
            actor="t",
            uploaded=[f"{guid}.tif"],
        )


class Health:
    """A lane's health probe that fails while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise ArsUnavailable("still down")


async def test_a_full_share_disk_stops_only_what_needs_new_share_space(tmp_path: Path) -> None:
    """DISK_FULL pauses `ars-space`: creates wait, while uploads into open shares and synchronisation go on."""
    ars = FakeArs()
    ars.refusals["create_asset"] = [ArsDiskFull("ARS has no disk space (DISK_FULL, 0 MB remaining)", remaining_mb=0)]
    async with harness(tmp_path) as h:
        for n in (1, 2, 3, 4):
            await record(h, guid_of(n))
        await move_to(h, ars, guid_of(2), AssetState.CREATED_IN_ARS)
        await move_to(h, ars, guid_of(3), AssetState.UPLOADED)
        first = await drive(h, ars, guid_of(1))
        assert first.state is AssetState.PAUSED
        assert h.lanes.lane("ars-space").paused
        assert not h.lanes.ars.paused
        uploading = await drive(h, ars, guid_of(2))
        syncing = await drive(h, ars, guid_of(3))
        assert (uploading.state, syncing.state) == (AssetState.SYNCING, AssetState.SYNCING)
        assert ars.calls["upload_file"] == 1
        assert ars.calls["synchronize"] == 2
        waiting = await drive(h, ars, guid_of(4))  # another create waits for the space, asking nobody
        assert waiting.state is AssetState.PAUSED
        assert waiting.wake is not None
        assert waiting.wake.lane == "ars-space"
        assert ars.calls["create_asset"] == 1


async def test_a_site_error_its_health_probe_does_not_confirm_is_this_assets(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """ARS unreachable for one asset while ARS's health probe answers: no lane pause; the asset retries alone.
    Once the probe fails too, the lane pauses."""
    ars = FakeArs()
    health = Health()
    ars.refusals["create_asset"] = [ArsUnavailable("ARS did not answer"), ArsUnavailable("ARS did not answer")]
    async with harness(tmp_path) as h:
        await record(h, guid_of(5))
        alone = await drive(h, ars, guid_of(5), health={"ars": health})
        assert not h.lanes.ars.paused
        assert alone.state is AssetState.INGESTED
        assert alone.attempts == 1
        assert alone.wake is not None
        assert alone.wake.kind == "dispatch"
        assert "only this asset is affected" in alone.wake.reason
        assert health.calls == 1
        health.down = True
        await trio.sleep(3)  # the probe's answer is reused for a moment only
        paused = await drive(h, ars, guid_of(5), health={"ars": health})
        assert h.lanes.ars.paused
        assert paused.state is AssetState.PAUSED


async def test_a_vanished_storage_folder_pauses_the_storage_lane_only_when_storage_is_down(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The local copy's whole folder is gone: with storage answering it is this asset's (retried, never
    quarantined on the spot); with storage down the storage lane pauses and nothing is quarantined."""
    ars = FakeArs()
    health = Health()
    async with harness(tmp_path) as h:
        for n in (6, 7):
            await record(h, guid_of(n), local=tmp_path / "unmounted" / guid_of(n) / f"{guid_of(n)}.tif")
        alone = await drive(h, ars, guid_of(6), health={"storage": health})
        assert alone.state is AssetState.CREATED_IN_ARS
        assert alone.attempts == 1
        assert not h.lanes.storage.paused
        health.down = True
        await trio.sleep(3)
        paused = await drive(h, ars, guid_of(7), health={"storage": health})
        assert h.lanes.storage.paused
        assert paused.state is AssetState.PAUSED
        assert "is local storage mounted?" in h.lanes.storage.reason
        assert await h.store.assets.counts_by_state() == {"created_in_ars": 1, "paused": 1}


async def test_a_wait_of_its_own_ends_in_failed_after_max_wait(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """ARS keeps telling an asset to wait: each wait is noted once, and after ars.max_wait_s it fails (a human
    can retry it), instead of waiting for ever."""
    ars = FakeArs()
    ars.refusals["create_asset"] = [AssetWaits("too big for the free space", retry_after_s=300) for _ in range(20)]
    async with harness(tmp_path, ars={"max_wait_s": 1000.0}) as h:
        await record(h, guid_of(8))
        result: AssetRecord | None = None
        for _ in range(50):
            result = await drive(h, ars, guid_of(8))
            if result.state is AssetState.FAILED:
                break
            assert result.wake is not None
            assert result.wake.due is not None
            await trio.sleep(result.wake.due - trio.current_time())
        assert result is not None
        assert result.state is AssetState.FAILED
        assert "on its own and gave up" in result.reason
        notes = [e for e in await h.store.assets.events(guid_of(8)) if e.trigger == "waits"]
        assert len(notes) == 1, "a wait is an event once, not at every look"


async def test_being_processed_forever_counts_attempts_and_fails(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """ARS answers 'already being processed' to every create (its own create keeps failing): the attempts are
    counted, and the asset fails with words that say so instead of waiting for ever."""
    ars = FakeArs()
    blocked = [
        ArsConflict("blocked", status_code=403, error_message="already being processed", kind="being_processed")
        for _ in range(20)
    ]
    ars.refusals["create_asset"] = blocked
    async with harness(
        tmp_path,
        ars={"create_dedup_window_s": 10.0},
        retry={"attempts": 2, "initial_s": 1.0, "max_s": 5.0, "jitter_s": 0.0},
    ) as h:
        await record(h, guid_of(9))
        result: AssetRecord | None = None
        for _ in range(20):
            result = await drive(h, ars, guid_of(9))
            if result.state is AssetState.FAILED:
                break
            await trio.sleep(20)
        assert result is not None
        assert result.state is AssetState.FAILED
        assert "already being processed' to" in result.reason
        assert ars.calls["create_asset"] <= 5


async def test_a_file_format_hold_is_found_under_the_formats_ars_name(tmp_path: Path) -> None:
    """ARS names formats its own way (jpg is JPEG): a held format holds the assets with such files."""
    ars = FakeArs()
    ars.refusals["create_asset"] = [
        GroupHeld("JPEG is not a valid file format", group_kind="file_format", group_value="JPEG")
    ]
    async with harness(tmp_path) as h:
        for n in (10, 11):
            path = tmp_path / "storage" / guid_of(n) / f"{guid_of(n)}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\xff\xd8\xff")
            await record(h, guid_of(n), local=path)
            await h.store.run(
                lambda c, n=n: c.execute("UPDATE files SET name = ? WHERE guid = ?", (f"{guid_of(n)}.jpg", guid_of(n)))
            )
        held = await drive(h, ars, guid_of(10))
        assert "hold:file_format:JPEG" in h.lanes.holds
        assert held.state is AssetState.INGESTED
        waiting = await drive(h, ars, guid_of(11))
        assert waiting.wake is not None
        assert waiting.wake.lane == "hold:file_format:JPEG"
        assert ars.calls["create_asset"] == 1


async def test_no_share_is_opened_while_ars_synchronises_the_asset(tmp_path: Path) -> None:
    """A share closed for uploads because ERDA syncs it (ASSET_RECEIVED): the asset waits, no createShare."""
    ars = FakeArs()
    async with harness(tmp_path) as h:
        await record(h, guid_of(12))
        await move_to(h, ars, guid_of(12), AssetState.CREATED_IN_ARS)
        ars.assets[guid_of(12)] = msgspec.structs.replace(ars.assets[guid_of(12)], internal_status="ASSET_RECEIVED")
        ars.refusals["upload_file"] = [ArsShareClosed("no writeable directory", status_code=400)]
        result = await drive(h, ars, guid_of(12))
        assert result.state is AssetState.CREATED_IN_ARS
        assert result.waiting_since is not None
        assert ars.calls.get("open_share", 0) == 0


async def test_a_lane_that_reopens_too_early_counts_it_as_a_failed_probe(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Paused again soon after it reopened (a probe passed, the next asset failed): the back-off grows instead
    of flapping at the first interval; after a long healthy spell it starts small again."""
    async with harness(tmp_path, lanes={"probe_initial_s": 10.0, "probe_max_s": 100.0}) as h:
        lane = h.lanes.ars
        await lane.pause("down", probe="health", actor="t")
        assert lane.next_probe == trio.current_time() + 10.0
        for cycles in (1, 2):
            await lane.resume("probe passed", actor="t")
            await trio.sleep(5)
            await lane.pause("down again", probe="health", actor="t")
            assert lane.cycles == cycles
        assert lane.next_probe == trio.current_time() + 40.0
        await lane.resume("probe passed", actor="t")
        await trio.sleep(101)
        await lane.pause("down after a long healthy spell", probe="health", actor="t")
        assert lane.cycles == 0
        assert lane.next_probe == trio.current_time() + 10.0


async def test_a_redelivery_of_an_asset_in_ars_replaces_its_metadata_there(tmp_path: Path) -> None:
    """ARS holds our asset under its old collection; the corrected delivery says another one: the asset is
    still recognised as ours (by its creator), ARS's metadata is replaced, nothing is created twice."""
    ars = FakeArs()
    async with harness(tmp_path) as h:
        guid = guid_of(13)
        await record(h, guid)
        ars.hold(guid)
        ars.assets[guid] = msgspec.structs.replace(ars.assets[guid], collection="old-collection")
        await h.store.run(lambda c: c.execute("UPDATE assets SET in_ars = 1 WHERE guid = ?", (guid,)))
        await h.store.assets.open_intent(guid, "update_metadata", expected=AssetState.INGESTED, actor="watcher")
        result = await drive(h, ars, guid)
        assert result.state is AssetState.SYNCING
        assert ars.calls["update_asset"] == 1
        assert ars.calls.get("create_asset", 0) == 0
        assert not result.has_intent("update_metadata")


async def test_an_asset_parked_on_a_lane_that_just_reopened_is_woken(tmp_path: Path) -> None:
    """The lane reopens (releasing its waiters) just before an asset's park is written: the asset must not
    wait for a release that already happened."""
    async with harness(tmp_path) as h:
        guid = guid_of(14)
        await record(h, guid)
        lane = h.lanes.ars
        await lane.pause("down", probe="health", actor="t")
        before = await h.store.assets.get(guid)
        assert before is not None
        await lane.resume("back", actor="t")  # released nobody: the asset had not parked yet
        await _asset_actor._park(before, lane, deps(h, FakeArs()))
        after = await h.store.assets.get(guid)
        assert after is not None
        assert after.state is AssetState.PAUSED
        assert after.wake is not None
        assert after.wake.kind == "dispatch"
        assert "reopened while it was parked" in after.wake.reason


async def test_a_refusal_no_health_check_can_see_pauses_the_lane_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A missing role (ArsForbidden) is every asset's answer even while ARS's health check passes (it uses no
    data right): the lane pauses at once; assets are not failed one by one."""
    ars = FakeArs()
    health = Health()
    ars.refusals["create_asset"] = [ArsForbidden("ARS refused create_asset (403): a missing role", status_code=403)]
    async with harness(tmp_path) as h:
        await record(h, guid_of(15))
        result = await drive(h, ars, guid_of(15), health={"ars": health})
        assert h.lanes.ars.paused
        assert result.state is AssetState.PAUSED
        assert health.calls == 0, "nothing to confirm: the refusal itself says it is everyone's"
