"""The way out of quarantine, end to end: `integration retry` reconciles with ARS first (through a running daemon,
or on the database when none runs), a corrected re-delivery replaces a quarantined asset, `integration ack`
closes rejections — and "needs a human" becomes empty again."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import tomli_w
import trio
from typer.testing import CliRunner

from daemon_support import (
    SECRET,
    ArsServer,
    config_dict,
    make_config,
    start_daemon,
    wait_for_states,
    wait_until,
    write_session,
)
from integration.actors import RetryRequest, retry_assets
from integration.adapters.ars import open_ars_client
from integration.cli import app
from integration.state_machines import AssetState, AssetTrigger
from integration.status import collect_status
from integration.store import open_store


def config_file(tmp_path: Path, port: int, **sections: dict[str, object]) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(config_dict(tmp_path, port, **sections)), encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


async def test_retry_through_the_running_daemon_uploads_what_ars_lacks(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A quarantined asset that exists in ARS is retried via the CLI: it resumes at created_in_ars, never re-created."""
    ars.emulator.update_faults({"crc_corrupt_next": 100})
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=41)
    sections: dict[str, dict[str, object]] = {"ars": {"crc_mismatch_retries": 1}, "daemon": {"admin_poll_s": 0.1}}
    path = config_file(tmp_path, ars.port, **sections)
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, **sections))
    await wait_for_states(daemon, {"quarantined": 1})
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert "exists in ARS" in record.reason
    ars.emulator.update_faults({"crc_corrupt_next": 0})
    code, output = await trio.to_thread.run_sync(run_cli, "retry", guid, "-c", str(path), "--reason", "network fixed")
    assert code == 0, output
    assert f"{guid}: moved -> created_in_ars" in output
    await wait_for_states(daemon, {"synced": 1})
    assert ars.emulator.stats().creates_committed_by_guid == {guid: 1}
    retry = next(e for e in await daemon.store.assets.events(guid) if e.trigger == "retry_upload")
    assert "network fixed" in retry.reason
    assert retry.actor.startswith("operator:")


async def test_retry_without_a_daemon_reconciles_on_the_database(tmp_path: Path, ars: ArsServer) -> None:
    """With no daemon running, retry asks ARS itself: an asset ARS does not know goes back to ingested."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=42)
    folder = tmp_path / "ndrive" / "test-workstation" / "s1"
    metadata = json.loads((folder / f"{guid}.json").read_text())
    metadata["parent_guid"] = "7e8-8-08-0c-1b-15-2-003-04-000-0fffff"  # ARS: "Parent doesnt exist"
    (folder / f"{guid}.json").write_text(json.dumps(metadata))
    config = make_config(tmp_path, ars.port)
    async with trio.open_nursery() as nursery:
        daemon = await start_daemon(nursery, config)
        await wait_for_states(daemon, {"quarantined": 1})
        nursery.cancel_scope.cancel()
    async with (
        open_store(Path(config.storage.database)) as store,
        open_ars_client(config.ars, config.retry, secret=SECRET) as client,
    ):
        [result] = await retry_assets(
            RetryRequest(guids=[guid], reason="try again", by="test"), store=store, ars=client
        )
        assert result.outcome == "moved"
        assert result.state == "ingested"
        assert "ARS does not know the asset" in result.message
        unknown = await retry_assets(RetryRequest(guids=["nope"], reason="x", by="test"), store=store, ars=client)
        assert unknown[0].outcome == "unknown"


async def test_a_corrected_redelivery_is_imported_and_synced(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """The digitiser drops the fixed files of a quarantined GUID in a new folder: they replace it and sync."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=43)
    folder = tmp_path / "ndrive" / "test-workstation" / "s1"
    good = json.loads((folder / f"{guid}.json").read_text())
    bad = {**good, "parent_guid": "7e8-8-08-0c-1b-15-2-003-04-000-0fffff"}
    (folder / f"{guid}.json").write_text(json.dumps(bad))
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port))
    await wait_for_states(daemon, {"quarantined": 1})
    fixed = tmp_path / "ndrive" / "test-workstation" / "s2"
    fixed.mkdir()
    (fixed / f"{guid}.tif").write_bytes((folder.parent / "imported_s1" / f"{guid}.tif").read_bytes())
    (fixed / f"{guid}.json").write_text(json.dumps(good))
    await wait_for_states(daemon, {"synced": 1})
    events = [e.trigger for e in await daemon.store.assets.events(guid)]
    assert "redeliver" in events
    assert ars.emulator.stats().creates_committed_by_guid == {guid: 1}


async def test_ack_closes_rejections_and_nothing_needs_a_human_again(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A stray file's rejection is acknowledged through the daemon; status then says nothing needs a human."""
    write_session(tmp_path, "test-workstation", "s1", 1, seed=44)
    (tmp_path / "ndrive" / "test-workstation" / "s1" / "notes.txt").write_text("a stray file")
    (tmp_path / "ndrive" / "test-workstation-2").mkdir()
    path = config_file(tmp_path, ars.port, daemon={"admin_poll_s": 0.1})
    config = make_config(tmp_path, ars.port, daemon={"admin_poll_s": 0.1})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 1})
    await wait_until(lambda: _has_attention(config), what="the stray file's rejection")
    [item] = collect_status(config).attention
    assert item.kind == "rejection"
    assert item.id is not None
    code, output = await trio.to_thread.run_sync(
        run_cli, "ack", str(item.id), "-c", str(path), "--reason", "moved the notes away"
    )
    assert code == 0, output
    assert f"#{item.id}" in output
    assert collect_status(config).attention == []


async def _has_attention(config: object) -> bool:
    return bool(collect_status(config).attention)  # type: ignore[arg-type]


async def test_retry_refuses_an_asset_that_is_not_waiting_for_a_human(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """Retrying a synced asset changes nothing and says why (exit 0); an unknown GUID exits 1."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=45)
    path = config_file(tmp_path, ars.port, daemon={"admin_poll_s": 0.1})
    daemon = await start_daemon(nursery, make_config(tmp_path, ars.port, daemon={"admin_poll_s": 0.1}))
    await wait_for_states(daemon, {"synced": 1})
    code, output = await trio.to_thread.run_sync(run_cli, "retry", guid, "-c", str(path), "--reason", "x")
    assert code == 0, output
    assert "unchanged" in output
    assert "not quarantined or failed" in output
    code, output = await trio.to_thread.run_sync(run_cli, "retry", "nope", "-c", str(path), "--reason", "x")
    assert code == 1
    assert "nope: unknown" in output


async def test_a_redelivery_of_an_asset_in_ars_replaces_its_metadata_and_files(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A failed asset ARS holds is delivered again (new TIFF, CR3 instead of DNG, corrected metadata): ARS gets the
    new metadata and files; the old DNG, which only an ARS admin may delete, is named in the quarantine reason;
    once an admin deleted it, retry finishes the job — one ARS asset throughout."""
    folder = tmp_path / "ndrive" / "test-workstation" / "s1"
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=46)
    (folder / f"{guid}.dng").write_bytes(b"II*\x00" + b"old raw" * 100)
    config = make_config(tmp_path, ars.port, daemon={"admin_poll_s": 0.1})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 1})
    await daemon.store.assets.transition(
        guid, AssetTrigger.FAIL, expected=AssetState.SYNCED, reason="found wrong by a curator", actor="test"
    )
    fixed = tmp_path / "ndrive" / "test-workstation" / "s2"
    fixed.mkdir()
    metadata = json.loads((folder.parent / "imported_s1" / f"{guid}.json").read_text())
    metadata["digitiser"] = "corrected-digitiser"
    (fixed / f"{guid}.json").write_text(json.dumps(metadata))
    (fixed / f"{guid}.tif").write_bytes(b"II*\x00" + b"new image" * 200)
    (fixed / f"{guid}.cr3").write_bytes(b"new raw" * 100)
    await wait_for_states(daemon, {"quarantined": 1})
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert f"{guid}.dng" in record.reason
    assert "administrator" in record.reason
    assert ars.emulator.core.assets[guid].record["digitiser"] == "corrected-digitiser"
    admin = ars.emulator.issue_token(client_id="integration-admin")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ars.port}") as http:
        deleted = await http.delete(
            f"/file_proxy/api/assetfiles/test-institution/test-collection/{guid}/{guid}.dng",
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert deleted.status_code == 204
    path = config_file(tmp_path, ars.port, daemon={"admin_poll_s": 0.1})
    code, output = await trio.to_thread.run_sync(run_cli, "retry", guid, "-c", str(path), "--reason", "dng deleted")
    assert code == 0, output
    await wait_for_states(daemon, {"synced": 1})
    assert ars.emulator.stats().creates_committed_by_guid == {guid: 1}
    assert ars.erda_bytes(guid, f"{guid}.tif") == (fixed.parent / "imported_s2" / f"{guid}.tif").read_bytes()
    assert ars.erda_bytes(guid, f"{guid}.cr3") == (fixed.parent / "imported_s2" / f"{guid}.cr3").read_bytes()
    erda = tmp_path / "ars" / "erda" / "test-institution" / "test-collection" / guid
    assert sorted(p.name for p in erda.iterdir()) == sorted([f"{guid}.tif", f"{guid}.cr3"])
