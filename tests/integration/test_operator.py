"""The way out of quarantine, end to end: `integration retry` reconciles with ARS first (through a running daemon,
or on the database when none runs), a corrected re-delivery replaces a quarantined asset, `integration ack`
closes rejections — and "needs a human" becomes empty again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
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
from integration.cli import _operator as operator_cli
from integration.cli import app
from integration.errors import ArsUnavailable
from integration.state_machines import AssetState, AssetTrigger
from integration.status import collect_status
from integration.store import Store, daemon_lock, lock_holder, open_store, read_request


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


# -- requests that cannot be answered are withdrawn; a command holding the database is not sent one -----------


async def prepared(tmp_path: Path) -> tuple[Path, Path]:
    """A configuration file (no ARS needed) and its database, created empty; returns both paths."""
    path = config_file(tmp_path, 1)
    database = Path(make_config(tmp_path, 1).storage.database)
    async with open_store(database):
        pass
    return path, database


async def run_cli_within(seconds: float, *args: str) -> tuple[int, str]:
    """run_cli on a worker thread; a command that does not return within ``seconds`` fails the test."""
    with trio.fail_after(seconds):
        return await trio.to_thread.run_sync(lambda: run_cli(*args), abandon_on_cancel=True)


async def test_a_request_the_daemon_does_not_take_is_withdrawn_at_the_timeout(tmp_path: Path) -> None:
    """A request the daemon never takes is withdrawn when the command times out, so no later daemon runs it."""
    path, database = await prepared(tmp_path)
    with daemon_lock(database):  # a daemon that never looks at its requests
        code, output = await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x", "--timeout", "0.5")
    assert code == 1
    assert "did not take request #1 within 0.5 s; the request is withdrawn and nothing was changed" in output
    record = read_request(database, 1)
    assert record is not None
    assert record.status == "failed"
    assert "withdrawn" in record.result
    async with open_store(database) as store:
        assert await store.requests.pending() == []


async def test_a_request_is_withdrawn_when_the_daemon_stops_before_taking_it(tmp_path: Path) -> None:
    """When no daemon holds the database any more, the waiting command withdraws its request and says so."""
    path, database = await prepared(tmp_path)
    async with trio.open_nursery() as nursery:
        outcome: list[tuple[int, str]] = []

        async def command() -> None:
            outcome.append(await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x"))

        with daemon_lock(database):
            nursery.start_soon(command)
            await wait_until(lambda: _submitted(database), what="the request")
        # the daemon is gone, without an answer
    [(code, output)] = outcome
    assert code == 1
    assert "stopped before it took request #1; the request is withdrawn and nothing was changed" in output
    record = read_request(database, 1)
    assert record is not None
    assert "withdrawn" in record.result


async def _submitted(database: Path) -> bool:
    return read_request(database, 1) is not None


async def test_a_request_the_daemon_took_is_answered_even_after_the_timeout(tmp_path: Path) -> None:
    """Once the daemon took the request, the command waits past its timeout and prints the daemon's answer."""
    path, database = await prepared(tmp_path)
    async with trio.open_nursery() as nursery, open_store(database) as store:
        outcome: list[tuple[int, str]] = []

        async def command() -> None:
            outcome.append(
                await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x", "--timeout", "0.3")
            )

        with daemon_lock(database):
            nursery.start_soon(command)
            await wait_until(lambda: _taken(store), what="the request")
            await trio.sleep(1.0)  # well past the command's timeout
            await store.requests.finish(1, ok=True, result='{"acknowledged": [7]}')
            await wait_until(lambda: _done(outcome), what="the command")
    [(code, output)] = outcome
    assert code == 0, output
    assert "waiting for its answer" in output
    assert "acknowledged: #7" in output


async def _taken(store: Store) -> bool:
    return bool(await store.requests.pending())


async def _done(outcome: list[tuple[int, str]]) -> bool:
    return bool(outcome)


async def test_a_request_taken_by_a_daemon_that_stopped_is_withdrawn(tmp_path: Path) -> None:
    """A daemon that took the request and stopped before answering: the command withdraws it under the lock."""
    path, database = await prepared(tmp_path)
    async with trio.open_nursery() as nursery, open_store(database) as store:
        outcome: list[tuple[int, str]] = []

        async def command() -> None:
            outcome.append(await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x"))

        with daemon_lock(database):
            nursery.start_soon(command)
            await wait_until(lambda: _taken(store), what="the request")
        await wait_until(lambda: _done(outcome), what="the command")
        assert await store.requests.pending() == []  # a later daemon will not carry it out
    [(code, output)] = outcome
    assert code == 1
    assert "while working on request #1, before answering it; the request is withdrawn" in output
    assert "check `integration status`" in output


async def test_a_command_holding_the_database_is_not_sent_a_request(tmp_path: Path) -> None:
    """While another command works on the database, retry/ack say so at once and send no request."""
    path, database = await prepared(tmp_path)
    with daemon_lock(database, role="command"):
        code, output = await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x", "--timeout", "0.5")
    assert code == 1
    assert f"another `integration` command (PID {os.getpid()}) is working on the database; try again" in output
    assert read_request(database, 1) is None


async def test_ctrl_c_while_waiting_withdraws_the_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupting the waiting command withdraws a request the daemon has not taken."""
    path, database = await prepared(tmp_path)

    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(operator_cli, "_pause", interrupt)
    with daemon_lock(database):
        code, output = await run_cli_within(10, "ack", "--all", "-c", str(path), "--reason", "x")
    assert code == 130
    assert "interrupted: request #1 is withdrawn and nothing was changed" in output
    record = read_request(database, 1)
    assert record is not None
    assert record.status == "failed"


async def test_a_retry_stopped_by_a_site_error_does_not_claim_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a daemon, a retry that stops on an ARS outage says it stopped before the end, not "nothing changed"."""
    path, database = await prepared(tmp_path)

    async def outage(request: RetryRequest, **kwargs: object) -> list[object]:
        raise ArsUnavailable("ARS is unreachable (connection refused)")

    monkeypatch.setattr(operator_cli, "retry_assets", outage)
    code, output = await run_cli_within(30, "retry", "--all-failed", "-c", str(path), "--reason", "x")
    assert code == 1
    assert "stopped before the end: ARS is unreachable (connection refused) (check `integration status`)" in output
    assert "nothing was changed" not in output
    assert lock_holder(database) is None  # the command's lock went with it
