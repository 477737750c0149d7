"""Daemon logging (JSON, GUID on every asset line) and older ARS servers that report COMPLETED."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import trio

from daemon_support import make_config, serve_ars, start_daemon, wait_for_states, write_session
from integration.log_setup import configure_logging

ASSET_EVENTS = {"asset_ingested", "asset_synced", "asset_quarantined", "asset_failed", "asset_retry_scheduled"}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """structlog configured as the daemon does it, writing JSON lines into a buffer."""
    buffer = io.StringIO()
    configure_logging(fmt="auto", level="debug", stream=buffer)  # a StringIO is not a TTY: JSON
    yield buffer
    structlog.reset_defaults()


async def test_every_asset_line_carries_its_guid(nursery: trio.Nursery, tmp_path: Path, json_log: io.StringIO) -> None:
    """With JSON logging, every line about an asset (ingested, synced, ARS calls inside its actor) has asset_guid."""
    ars = await serve_ars(nursery, tmp_path)
    guids = write_session(tmp_path, "test-workstation", "s1", 3, seed=30)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"synced": 3})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    about_assets = [line for line in lines if line["event"] in ASSET_EVENTS]
    assert {line["event"] for line in about_assets} >= {"asset_ingested", "asset_synced"}
    for line in about_assets:
        assert line.get("asset_guid") in guids, line
    assert all("timestamp" in line and "level" in line for line in lines)


async def test_legacy_completed_status_counts_as_synced(nursery: trio.Nursery, tmp_path: Path) -> None:
    """An ARS older than 2.3 reports COMPLETED instead of ERDA_SYNCHRONISED; the daemon accepts it."""
    ars = await serve_ars(nursery, tmp_path, legacy_completed_status=True)
    guids = write_session(tmp_path, "test-workstation", "s1", 2, seed=31)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"synced": 2})
    assert ars.emulator.internal_status(guids[0]) == "COMPLETED"
    events = await daemon.store.assets.events(guids[0])
    assert "COMPLETED" in events[-1].reason
