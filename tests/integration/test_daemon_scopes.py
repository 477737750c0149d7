"""Scope before kind, end to end against the emulator: a site-wide "no" pauses the lane and resumes by itself,
a group's "no" holds that group only, one asset's "no" concerns it alone — nothing is quarantined for a cause
that every asset shares."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from daemon_support import (
    SECRET,
    ArsServer,
    make_config,
    serve_ars,
    start_daemon,
    wait_for_states,
    wait_until,
    write_session,
)
from integration.actors import run_daemon
from integration.emulators.ars import InstitutionSettings
from integration.errors import ArsCredentialsRefused, ArsRouteNotFound
from integration.status import collect_status
from integration.store import DatabaseThread, StoreUnavailable

FAST_LANES = {"probe_initial_s": 0.2, "probe_max_s": 1.0}


async def test_a_wrong_secret_pauses_the_lane_and_a_fixed_file_resumes_it(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A refused secret pauses the ARS lane with an actionable reason (no quarantine); fixing the file resumes it."""
    secret_file = tmp_path / "ars.secret"
    secret_file.write_text("wrong-secret\n")
    guids = write_session(tmp_path, "test-workstation", "s1", 4, seed=31)
    config = make_config(tmp_path, ars.port, ars={"client_secret_file": str(secret_file)}, lanes=FAST_LANES)
    daemon = await start_daemon(nursery, config, startup_check="skip", secret=config.ars.resolve_secret)
    await wait_until(lambda: _true(daemon.lanes.ars.paused), what="the ARS lane to pause")
    assert "Keycloak refused the client credentials" in daemon.lanes.ars.reason
    assert str(secret_file) in daemon.lanes.ars.reason
    await trio.sleep(1.0)
    counts = await daemon.store.assets.counts_by_state()
    assert "quarantined" not in counts
    assert "failed" not in counts
    secret_file.write_text(SECRET + "\n")
    await wait_for_states(daemon, {"synced": 4})
    assert not daemon.lanes.ars.paused
    assert set(ars.emulator.stats().creates_committed_by_guid) == set(guids)


async def _true(value: bool) -> bool:
    return value


async def test_the_start_up_check_refuses_a_wrong_secret_and_a_wrong_url(tmp_path: Path, ars: ArsServer) -> None:
    """run_daemon refuses to start when Keycloak refuses the secret or ars.base_url has a wrong path."""
    config = make_config(tmp_path, ars.port)
    with pytest.RaisesGroup(
        pytest.RaisesExc(ArsCredentialsRefused, match="check ars.client_id"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_daemon(config, secret="wrong", task_status=task_status))
    raw = msgspec.structs.replace(config.ars, base_url=f"http://127.0.0.1:{ars.port}/ars/api")
    wrong_url = msgspec.structs.replace(config, ars=raw)
    wrong = pytest.RaisesExc(ArsRouteNotFound, match="check ars.base_url")
    with pytest.RaisesGroup(wrong, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_daemon(wrong_url, secret=SECRET, task_status=task_status))


async def test_an_out_of_service_workstation_holds_only_its_assets(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Workstation 2 out of service: its assets are held (status says so), workstation 1's sync; back in service,
    they sync too."""
    institutions = {
        "test-institution": InstitutionSettings(
            collections=("test-collection",),
            pipelines=("test-pipeline",),
            workstations=("test-workstation",),
            out_of_service_workstations=("test-workstation-2",),
        )
    }
    ars = await serve_ars(nursery, tmp_path, institutions=institutions)
    held = write_session(tmp_path, "test-workstation-2", "s2", 3, seed=32)
    free = write_session(tmp_path, "test-workstation", "s1", 3, seed=33)
    config = make_config(tmp_path, ars.port, lanes=FAST_LANES)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 3})
    assert set(ars.emulator.stats().creates_committed_by_guid) == set(free)
    key = "hold:workstation:test-institution/test-workstation-2"
    assert key in daemon.lanes.holds
    report = collect_status(config)
    [hold] = [item for item in report.attention if item.kind == "hold"]
    assert "out of service" in hold.reason.lower()
    counts = await daemon.store.assets.counts_by_state()
    assert counts == {"synced": 3, "ingested": 3}
    institution = ars.emulator.core.ref.institutions["test-institution"]
    number, _ = institution.workstations["test-workstation-2"]
    institution.workstations["test-workstation-2"] = (number, "IN_SERVICE")
    await wait_for_states(daemon, {"synced": 6})
    assert set(ars.emulator.stats().creates_committed_by_guid) == set(free + held)
    assert key not in daemon.lanes.holds


async def test_disk_full_for_a_while_pauses_the_lane_once(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """DISK_FULL for 3 s with a 0.2 s first probe: one lane pause, each asset paused once, then all synced."""
    ars.emulator.update_faults({"disk_full": True})
    guids = write_session(tmp_path, "test-workstation", "s1", 4, seed=34)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, lanes=FAST_LANES))
    space = daemon.lanes.lane("ars-space")
    await wait_until(lambda: _true(space.paused), what="DISK_FULL to pause the lane")
    assert "DISK_FULL" in space.reason
    await trio.sleep(3.0)
    ars.emulator.update_faults({"disk_full": False})
    await wait_for_states(daemon, {"synced": 4})
    lane_events = await daemon.store.run(
        lambda c: c.execute(
            "SELECT trigger FROM events WHERE entity_kind = 'lane' AND entity_id = 'ars-space' ORDER BY id"
        ).fetchall()
    )
    triggers = [t for (t,) in lane_events]
    assert triggers.count("pause") == 1, triggers
    assert triggers.count("resume") == 1, triggers
    assert triggers.count("probe_failed") >= 2
    pauses = {}
    for guid in guids:
        events = [e.trigger for e in await daemon.store.assets.events(guid)]
        assert events.count("pause") == events.count("resume")
        pauses[guid] = events.count("pause")
    probe = max(pauses, key=pauses.__getitem__)
    assert pauses[probe] == 1 + triggers.count("probe_failed"), "the probe asset: one pause per failed probe"
    assert all(count == 1 for guid, count in pauses.items() if guid != probe), pauses


async def test_an_asset_too_big_for_the_free_space_waits_alone(nursery: trio.Nursery, tmp_path: Path) -> None:
    """DISK_FULL for one allocation bigger than what is left: that asset waits; the small ones sync; the lanes
    stay open."""
    ars = await serve_ars(nursery, tmp_path, total_storage_mb=60)
    ars.emulator.core.allocated_mb = 40  # other users' shares hold two thirds of the disk
    small = write_session(tmp_path, "test-workstation", "s1", 3, seed=35)
    [big] = write_session(tmp_path, "test-workstation", "s2", 1, seed=36, size=25_000_000)
    config = make_config(tmp_path, ars.port, ars={"disk_full_room_mb": 5})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 3})
    await trio.sleep(1.0)
    record = await daemon.store.assets.get(big)
    assert record is not None
    assert record.state.value == "ingested"
    assert record.wake is not None
    assert "not enough" in record.wake.reason
    assert not daemon.lanes.ars.paused
    assert not daemon.lanes.lane("ars-space").paused
    assert set(ars.emulator.stats().creates_committed_by_guid) == set(small)


async def test_an_asset_bigger_than_the_whole_share_disk_is_quarantined(nursery: trio.Nursery, tmp_path: Path) -> None:
    """An allocation bigger than ARS's whole share disk will never fit: quarantined with words saying so, at
    once (no waiting for a day); the others sync."""
    ars = await serve_ars(nursery, tmp_path, total_storage_mb=20)
    small = write_session(tmp_path, "test-workstation", "s1", 2, seed=38)
    [big] = write_session(tmp_path, "test-workstation", "s2", 1, seed=39, size=25_000_000)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, ars={"disk_full_room_mb": 5}))
    await wait_for_states(daemon, {"synced": 2, "quarantined": 1})
    record = await daemon.store.assets.get(big)
    assert record is not None
    assert record.state.value == "quarantined"
    assert "can never be stored this way" in record.reason
    assert set(ars.emulator.stats().creates_committed_by_guid) == set(small)


async def test_crc_mismatch_bursts_are_retried_not_quarantined(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """Four 507s in a row (more than the old immediate retries) are retried with back-off; the asset syncs."""
    ars.emulator.update_faults({"crc_corrupt_next": 4})
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=37)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, ars={"crc_mismatch_retries": 5}))
    await wait_for_states(daemon, {"synced": 1})
    assert ars.emulator.stats().uploads_crc_mismatch == 4
    original = tmp_path / "ndrive" / "test-workstation" / "imported_s1" / f"{guid}.tif"
    assert ars.erda_bytes(guid, f"{guid}.tif") == original.read_bytes()


async def test_our_create_committed_late_is_reconciled_not_quarantined(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A create that times out and commits late (status 404 meanwhile, then 403 / 400) ends as one asset, ours."""
    ars.emulator.update_faults({"late_create_commit_next": 1, "late_create_commit_s": 1.5})
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=38)
    config = make_config(
        tmp_path, ars.port, ars={"request_timeout_s": 0.5, "create_dedup_window_s": 3.0}, retry={"attempts": 2}
    )
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 1}, timeout=60)
    assert ars.emulator.stats().creates_committed_by_guid == {guid: 1}
    events = await daemon.store.assets.events(guid)
    assert "quarantine" not in [e.trigger for e in events]


async def test_ars_down_while_polling_pauses_the_lane_without_crashing_the_poller(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """ARS going down while assets are syncing pauses the lane; the poller does not crash; all sync afterwards."""
    ars.emulator.update_faults({"stuck_asset_received": True})
    write_session(tmp_path, "test-workstation", "s1", 5, seed=39)
    config = make_config(tmp_path, ars.port, lanes=FAST_LANES, ars={"sync_stuck_after_s": 60.0})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"syncing": 5})
    ars.emulator.update_faults({"down": True})
    await wait_until(lambda: _true(daemon.lanes.ars.paused), what="the poller to pause the lane")
    assert daemon.poller.site_errors >= 1, "nobody but the poller talks to ARS here"
    ars.emulator.update_faults({"down": False, "stuck_asset_received": False})
    await wait_for_states(daemon, {"synced": 5})
    assert daemon.heartbeats.actors["sync-poller"].restarts == 0


async def test_a_store_that_stops_working_stops_the_daemon_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database thread ends (a failing disk): the daemon stops with the cause instead of restarting actors
    that can do nothing without it."""
    config = make_config(tmp_path, 9)  # no ARS is asked: nothing to send

    def broken(self: DatabaseThread, connection: sqlite3.Connection, batch: list[Any]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            await start_daemon(nursery, config, startup_check="skip")
            monkeypatch.setattr(DatabaseThread, "_run_batch", broken)  # the next call (a heartbeat) ends it

    with pytest.raises(ExceptionGroup) as caught:
        with trio.fail_after(30):
            await scenario()
    assert caught.group_contains(StoreUnavailable, match="disk I/O error", depth=None)
