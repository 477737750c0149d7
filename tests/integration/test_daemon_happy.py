"""The daemon end to end against the emulator over real HTTP: N-Drive → synced, bytes intact, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import trio

from daemon_support import ArsServer, make_config, start_daemon, wait_for_states, write_session
from integration.demo import SpecimenSpec, generate_session
from integration.status import collect_status


async def test_assets_reach_synced_with_identical_bytes(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """Generated specimens (TIFF + DNG + JSON) of two workstations all reach synced; ARS holds the same bytes."""
    ndrive = tmp_path / "ndrive"
    first = generate_session(ndrive, "test-workstation", "s1", 3, spec=SpecimenSpec(width=400, height=600), seed=1)
    guids = write_session(tmp_path, "test-workstation-2", "s2", 5, seed=2)
    config = make_config(tmp_path, ars.port)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 8})
    imported = ndrive / "test-workstation" / "imported_s1"
    for asset in first:
        for path in asset.files:
            original = imported / path.name
            assert original.exists(), "N-Drive files are never deleted before finalization"
            if path.suffix != ".json":
                assert ars.erda_bytes(asset.guid, path.name) == original.read_bytes()
    stats = ars.emulator.stats()
    assert stats.creates_committed == 8
    assert set(stats.creates_committed_by_guid.values()) == {1}
    assert set(guids) <= set(stats.creates_committed_by_guid)
    events = await daemon.store.assets.events(first[0].guid)
    assert [e.to_state for e in events if e.kind == "transition"] == [
        "detected",
        "ingested",
        "created_in_ars",
        "uploaded",
        "syncing",
        "synced",
    ]
    assert all(e.reason for e in events)


async def test_status_reports_counts(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """`integration status` data lists the synced assets and no attention items on a clean run."""
    write_session(tmp_path, "test-workstation", "s1", 2, seed=3)
    (tmp_path / "ndrive" / "test-workstation-2").mkdir()  # a missing workstation folder needs a human
    config = make_config(tmp_path, ars.port)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 2})
    report = collect_status(config)
    assert report.counts == {"synced": 2}
    assert report.attention == []
    assert {actor.name for actor in report.actors} == {
        "admin-requests",
        "dispatcher",
        "heartbeat-writer",
        "lane-prober",
        "ndrive-watcher",
        "sync-poller",
        "wake-timer",
    }, "every actor is in the first heartbeat written"
    assert json.loads(msgspec.json.encode(report))["total"] == 2
