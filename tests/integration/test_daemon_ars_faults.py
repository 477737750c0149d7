"""ARS faults from the emulator: the daemon retries, reconciles, pauses and resumes — and loses nothing."""

from __future__ import annotations

from pathlib import Path

import trio

from daemon_support import ArsServer, make_config, start_daemon, wait_for_states, write_session
from integration.state_machines import AssetState


def assert_exactly_once(ars: ArsServer, guids: list[str]) -> None:
    stats = ars.emulator.stats()
    assert sorted(stats.creates_committed_by_guid) == sorted(guids)
    assert set(stats.creates_committed_by_guid.values()) == {1}


async def test_5xx_bursts_are_retried(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """With 30 % of ARS requests answered 503, every asset still syncs exactly once."""
    ars.emulator.update_faults({"error_rate": 0.3})
    guids = write_session(tmp_path, "test-workstation", "s1", 8, seed=11)
    config = make_config(tmp_path, ars.port, retry={"attempts": 8})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 8})
    assert_exactly_once(ars, guids)


async def test_timeouts_are_retried(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """Requests that hang past the client timeout are retried (creates reconciled), all assets sync."""
    ars.emulator.update_faults({"timeout_rate": 0.15, "timeout_hang_s": 2.0})
    guids = write_session(tmp_path, "test-workstation", "s1", 6, seed=12)
    config = make_config(tmp_path, ars.port, ars={"request_timeout_s": 0.5}, retry={"attempts": 8})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 6}, timeout=90)
    assert_exactly_once(ars, guids)


async def test_lost_create_reply_is_reconciled_not_repeated(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A create committed by ARS but answered 504 is found by status, never created a second time."""
    ars.emulator.update_faults({"drop_reply_after_create": 3})
    guids = write_session(tmp_path, "test-workstation", "s1", 3, seed=13)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"synced": 3})
    assert_exactly_once(ars, guids)


async def test_crc_mismatch_507_is_uploaded_again(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """A 507 (bytes corrupted on the way) leads to a new upload; ARS ends up with our bytes."""
    ars.emulator.update_faults({"crc_corrupt_next": 2})
    guids = write_session(tmp_path, "test-workstation", "s1", 2, seed=14)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"synced": 2})
    assert ars.emulator.stats().uploads_crc_mismatch == 2
    for guid in guids:
        original = tmp_path / "ndrive" / "test-workstation" / "imported_s1" / f"{guid}.tif"
        assert ars.erda_bytes(guid, f"{guid}.tif") == original.read_bytes()


async def test_disk_full_pauses_the_lane_and_resumes_by_itself(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """DISK_FULL pauses the ars-space lane (assets paused, none failed, ARS itself open); when space is back,
    all sync."""
    ars.emulator.update_faults({"disk_full": True})
    guids = write_session(tmp_path, "test-workstation", "s1", 4, seed=15)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"paused": 1})
    space = daemon.lanes.lane("ars-space")
    assert space.paused
    assert not daemon.lanes.ars.paused
    assert "DISK_FULL" in space.reason
    counts = await daemon.store.assets.counts_by_state()
    assert AssetState.FAILED.value not in counts
    ars.emulator.update_faults({"disk_full": False})
    await wait_for_states(daemon, {"synced": 4})
    assert not space.paused
    assert_exactly_once(ars, guids)
    lanes = {lane.name: lane for lane in await daemon.store.lanes.all()}
    assert lanes["ars-space"].paused is False


async def test_ars_down_for_a_while(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """ARS answering 503 to everything pauses the lane; once it is up again every asset syncs."""
    ars.emulator.update_faults({"down": True})
    guids = write_session(tmp_path, "test-workstation", "s1", 4, seed=16)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port), startup_check="offline_ok")
    with trio.fail_after(30):
        while not daemon.lanes.ars.paused:
            await trio.sleep(0.05)
    await trio.sleep(1.0)
    assert (await daemon.store.assets.counts_by_state()).get("synced", 0) == 0
    ars.emulator.update_faults({"down": False})
    await wait_for_states(daemon, {"synced": 4})
    assert_exactly_once(ars, guids)


async def test_erda_failure_is_resynchronised(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """ERDA_FAILED (3 failed sync jobs) leads to a bounded re-synchronisation, then synced."""
    ars.emulator.update_faults({"erda_fail_next": 3})
    guids = write_session(tmp_path, "test-workstation", "s1", 1, seed=17)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"synced": 1})
    events = await daemon.store.assets.events(guids[0])
    assert "resync" in [e.trigger for e in events]
    assert any("ERDA" in e.reason for e in events if e.trigger == "resync")


async def test_erda_failing_forever_fails_the_asset_with_a_reason(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """When ERDA keeps failing past ars.max_resyncs the asset is failed, with the reason recorded."""
    ars.emulator.update_faults({"erda_fail_next": 1000})
    guids = write_session(tmp_path, "test-workstation", "s1", 1, seed=18)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, ars={"max_resyncs": 1}))
    await wait_for_states(daemon, {"failed": 1})
    record = await daemon.store.assets.get(guids[0])
    assert record is not None
    assert "gave up after 1 re-synchronisations" in record.reason


async def test_stuck_in_asset_received_is_resynchronised(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """An asset stuck in ASSET_RECEIVED beyond ars.sync_stuck_after_s is synchronised again."""
    ars.emulator.update_faults({"stuck_asset_received": True})
    guids = write_session(tmp_path, "test-workstation", "s1", 1, seed=19)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, ars={"sync_stuck_after_s": 0.5}))
    with trio.fail_after(30):
        while "resync" not in [e.trigger for e in await daemon.store.assets.events(guids[0])]:
            await trio.sleep(0.05)
    ars.emulator.update_faults({"stuck_asset_received": False})
    await wait_for_states(daemon, {"synced": 1})


async def test_intake_goes_on_while_ars_is_down_and_actors_are_full(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """With every actor slot and queue place taken by paused assets, new sessions are still imported."""
    ars.emulator.update_faults({"down": True})
    guids = write_session(tmp_path, "test-workstation", "s1", 12, seed=20)
    guids += write_session(tmp_path, "test-workstation", "s2", 12, seed=21)
    config = make_config(tmp_path, ars.port, concurrency={"assets": 1})  # queue of 4
    daemon = await start_daemon(nursery, config, startup_check="offline_ok")
    ws = tmp_path / "ndrive" / "test-workstation"
    with trio.fail_after(30):
        while not ((ws / "imported_s1").is_dir() and (ws / "imported_s2").is_dir()):
            await trio.sleep(0.05)
    counts = await daemon.store.assets.counts_by_state()
    assert sum(counts.values()) == 24
    assert counts.get("synced", 0) == 0
    ars.emulator.update_faults({"down": False})
    await wait_for_states(daemon, {"synced": 24}, timeout=120)
    assert_exactly_once(ars, guids)
