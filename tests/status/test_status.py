"""`integration status` tells the truth: "Nothing needs a human" only when nothing does."""

from __future__ import annotations

import os
from pathlib import Path

from daemon_support import make_config
from integration.config import Config
from integration.state_machines import AssetState, AssetTrigger
from integration.status import collect_status, render_status
from integration.store import LaneRecord, Rejection, Wake, daemon_lock, open_store
from store.test_store import new_asset


def config_with_folders(tmp_path: Path) -> Config:
    config = make_config(tmp_path, 1)
    for workstation in config.ndrive.workstations:
        (Path(config.ndrive.root) / workstation).mkdir(parents=True, exist_ok=True)
    return config


async def test_a_clean_store_needs_nobody(tmp_path: Path) -> None:
    """Synced assets, open lanes, folders present, no crashes: nothing needs a human, and the text says so."""
    config = config_with_folders(tmp_path)
    async with open_store(Path(config.storage.database)) as store:
        await store.assets.record_ingested(new_asset("a"), actor="t")
        await store.assets.transition("a", AssetTrigger.FAIL, expected=AssetState.INGESTED, reason="x", actor="t")
        await store.assets.transition("a", AssetTrigger.RETRY_SYNCED, expected=AssetState.FAILED, reason="y", actor="t")
    report = collect_status(config)
    assert report.attention == []
    assert "Nothing needs a human." in render_status(report)


async def test_every_kind_of_trouble_is_listed(tmp_path: Path) -> None:
    """A paused lane, a held group, a crashing actor, a quarantined asset and an idle daemon all need a human."""
    config = config_with_folders(tmp_path)
    async with open_store(Path(config.storage.database)) as store:
        await store.assets.record_ingested(new_asset("waits"), actor="t")
        await store.assets.record_ingested(new_asset("bad"), actor="t")
        await store.assets.transition(
            "bad", AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="ARS refused it", actor="t"
        )
        for name, kind in (("ars", "lane"), ("hold:workstation:i/w", "group")):
            record = LaneRecord(
                name=name, kind=kind, paused=True, reason="down", since=1.0, probe="health", cycles=2, next_probe=5.0
            )
            await store.lanes.save(record, event="pause", actor="t")
        await store.actors.beat([("sync-poller", 1.0, 3, "RuntimeError: boom", 1.0)], started_at=0.0)
    report = collect_status(config)
    kinds = {item.kind: item for item in report.attention}
    assert set(kinds) == {"daemon", "lane", "hold", "actor", "asset"}
    assert "resumes by itself" in kinds["lane"].reason
    assert "restarted 3 times" in kinds["actor"].reason
    assert "1 asset(s) wait for the daemon" in kinds["daemon"].reason
    assert kinds["asset"].name == "bad"
    text = render_status(report)
    assert "Nothing needs a human" not in text
    assert all(len(line) <= 80 for line in text.splitlines())


async def test_a_lane_paused_past_its_probes_says_a_human_must_look(tmp_path: Path) -> None:
    """After lanes.needs_human_after failed probes a paused lane is reported as still paused, not self-healing."""
    config = config_with_folders(tmp_path)
    async with open_store(Path(config.storage.database)) as store:
        record = LaneRecord(
            name="storage",
            kind="lane",
            paused=True,
            reason="disk full",
            since=1.0,
            probe="health",
            cycles=config.lanes.needs_human_after,
            next_probe=None,
        )
        await store.lanes.save(record, event="probe_failed", actor="t")
    [item] = collect_status(config).attention
    assert item.reason.startswith(f"still paused after {config.lanes.needs_human_after} probes")


async def test_missing_workstation_folders_are_shown(tmp_path: Path) -> None:
    """A configured workstation folder that does not exist on the N-Drive needs a human."""
    config = make_config(tmp_path, 1)
    (Path(config.ndrive.root) / config.ndrive.workstations[0]).mkdir(parents=True)
    async with open_store(Path(config.storage.database)):
        pass
    [item] = collect_status(config).attention
    assert item.kind == "ndrive"
    assert item.name == config.ndrive.workstations[1]


async def test_assets_waiting_on_their_own_are_shown_without_needing_a_human(tmp_path: Path) -> None:
    """Assets ARS asked to wait are counted, the longest-waiting named with why; they need nobody (yet)."""
    config = config_with_folders(tmp_path)
    async with open_store(Path(config.storage.database)) as store:
        for guid, since in (("short", 900.0), ("long", 100.0)):
            await store.assets.record_ingested(new_asset(guid), actor="t")
            await store.assets.update(
                guid,
                expected=AssetState.INGESTED,
                waiting_since=since,
                wake=Wake(kind="dispatch", due=2000.0, reason=f"waits: too big ({guid})"),
            )
    report = collect_status(config, now=1000.0)
    assert (report.waits.count, report.waits.longest_guid, report.waits.longest_since) == (2, "long", 100.0)
    assert report.waits.longest_reason == "waits: too big (long)"
    assert [item.kind for item in report.attention] == ["daemon"]  # the daemon is not running; the waits are fine
    text = render_status(report)
    assert "Waiting on their own (2; they go on by themselves)" in text
    assert "longest: long, for 15 min: waits: too big (long)" in text


async def test_a_command_holding_the_database_is_named(tmp_path: Path) -> None:
    """While `integration retry` works on the database without a daemon, status says so (not just "not running")."""
    config = config_with_folders(tmp_path)
    async with open_store(Path(config.storage.database)):
        pass
    with daemon_lock(Path(config.storage.database), role="command"):
        report = collect_status(config)
    assert (report.daemon.running, report.daemon.command_pid) == (False, os.getpid())
    assert f"an `integration` command (PID {os.getpid()}) is working on it" in render_status(report)


async def test_a_rejection_points_to_the_folder_where_its_note_is_now(tmp_path: Path) -> None:
    """After the `imported_` rename, a rejection's note is in the renamed folder: status names that folder."""
    config = config_with_folders(tmp_path)
    session = str(Path(config.ndrive.root) / "test-workstation" / "s1")
    async with open_store(Path(config.storage.database)) as store:
        await store.intake.record_rejection(
            Rejection(session=session, name="x.tif", guid=None, reason="no JSON", at=1.0, kind="intake")
        )
        await store.intake.start_rename(session, session.replace("/s1", "/imported_s1"), actor="t")
        await store.intake.finish_rename(
            session,
            session.replace("/s1", "/imported_s1"),
            workstation="test-workstation",
            assets=0,
            rejected=1,
            actor="t",
        )
    [item] = [i for i in collect_status(config).attention if i.kind == "rejection"]
    assert item.where == session.replace("/s1", "/imported_s1")


async def test_processing_load_is_shown_next_to_its_limits(tmp_path: Path) -> None:
    """With processing on, status shows the assets on the HPC, open-share and derivative megabytes against
    their limits, and the jobs by state; with processing off, no such section."""
    config = make_config(tmp_path, 1, executor={"kind": "local"}, processing={"max_assets_on_hpc": 7})
    async with open_store(Path(config.storage.database)) as store:
        await store.assets.record_ingested(new_asset("a"), actor="t")
        await store.assets.transition("a", AssetTrigger.FAIL, expected=AssetState.INGESTED, reason="x", actor="t")
        await store.assets.transition("a", AssetTrigger.RETRY_SYNCED, expected=AssetState.FAILED, reason="y", actor="t")
        await store.assets.transition("a", AssetTrigger.OPEN_SHARE, expected=AssetState.SYNCED, reason="z", actor="t")
        await store.jobs.plan("a", [[("barcode", "barcode")]], actor="t")
    text = render_status(collect_status(config))
    assert "assets on the HPC              1 / 7" in text
    assert "jobs: waiting 1" in text
    assert "Processing (now / limit)" not in render_status(collect_status(make_config(tmp_path, 1)))
