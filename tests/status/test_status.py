"""`integration status` tells the truth: "Nothing needs a human" only when nothing does."""

from __future__ import annotations

from pathlib import Path

from daemon_support import make_config
from integration.config import Config
from integration.state_machines import AssetState, AssetTrigger
from integration.status import collect_status, render_status
from integration.store import LaneRecord, open_store
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
