"""Processing end to end: the daemon, the ARS emulator over HTTP, the local executor running real job
runners (or tests/fault_runner.py, which misbehaves as told per module and attempt, else runs the real one)."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
import trio
from typer.testing import CliRunner

from daemon_support import (
    ArsServer,
    config_dict,
    make_config,
    serve_ars,
    start_daemon,
    wait_for_states,
    wait_until,
    write_session,
)
from integration.actors._ars_record import WRITABLE_FIELDS
from integration.adapters.ars import open_ars_client
from integration.cli import app
from integration.config import Config
from integration.demo import SpecimenSpec, generate_session
from integration.state_machines import AssetState, DerivativeState, JobState
from integration.store import open_store


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


FAULT_RUNNER = Path(__file__).resolve().parents[1] / "fault_runner.py"
SHORT = [["asset_loader"], ["barcode"], ["cleanup"]]


def _job(module: str, **settings: Any) -> dict[str, Any]:
    return {"module": module, "time_limit_s": 60.0, "timeout_s": 90.0, "retries": 1, **settings}


def processing_config(
    tmp_path: Path,
    ars: ArsServer,
    faults: dict[str, Any] | None = None,
    *,
    pipeline: list[list[str]] = SHORT,
    jobs: dict[str, dict[str, Any]] | None = None,
    processing: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Config:
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(json.dumps(faults or {}))
    every = {
        name: _job(name)
        for name in ("asset_loader", "barcode", "ocr", "crop_derivatives", "derivative_upload", "cleanup")
    }
    for name, changes in (jobs or {}).items():
        every[name] = {**every[name], **changes}
    sections = {
        "executor": {
            "kind": "local",
            "runner": [sys.executable, str(FAULT_RUNNER), str(faults_file)],
            "parallel_jobs": 2,
        },
        "pipelines": {"test-pipeline": {"jobs": pipeline}},
        "jobs": every,
        "api": {"port": 0},
        "processing": {"derivative_poll_s": 0.2, **(processing or {})},
        "daemon": {"admin_poll_s": 0.1},
        **sections,
    }
    (tmp_path / "config.toml").write_text(tomli_w.dumps(config_dict(tmp_path, ars.port, **sections)))  # for the CLI
    return make_config(tmp_path, ars.port, **sections)


async def _job_events(daemon: Any, guid: str, job: str) -> str:
    return "\n".join(f"{e.trigger} {e.to_state}: {e.reason}" for e in await daemon.store.jobs.events(guid, job))


def _files_left(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "ndrive").rglob("*") if p.is_file()]


@pytest.mark.slow
async def test_the_whole_pipeline_reaches_finalized(nursery: trio.Nursery, tmp_path: Path, ars: ArsServer) -> None:
    """One drawn sheet through all six jobs: barcode found, OCR text and specimen in ARS, two derivative child
    assets in ERDA under their parent, every copy deleted, a report left, every job's module version recorded."""
    made = generate_session(
        tmp_path / "ndrive", "test-workstation", "s1", 1, spec=SpecimenSpec(width=1200, height=1800), seed=3
    )
    config = processing_config(
        tmp_path,
        ars,
        pipeline=[["asset_loader"], ["barcode", "ocr"], ["crop_derivatives"], ["derivative_upload"], ["cleanup"]],
    )
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"finalized": 1}, timeout=180)
    guid = made[0].guid
    jobs = await daemon.store.jobs.of_asset(guid)
    assert {j.job: j.state for j in jobs} == dict.fromkeys([j.job for j in jobs], JobState.DONE)
    assert all(j.module_version for j in jobs)
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        document = await client.get_asset_document(guid)
        assert document is not None
        assert [s["specimen"]["barcode"] for s in document["asset_specimen"]] == [made[0].barcode]
        assert document["tags"]["ocr"].strip()
        children = await daemon.store.derivatives.of_parent(guid)
        assert len(children) == 2
        assert {c.state for c in children} == {DerivativeState.FINALIZED}
        for child in children:
            ars_child = await client.get_asset(child.guid)
            assert ars_child is not None
            assert ars_child.parent_guids == (guid,)
            held = ars.erda_bytes(child.guid, child.name)
            assert held[:2] in (b"II", b"MM", b"\xff\xd8")  # a TIFF or a JPEG
            assert zlib.crc32(held) == child.crc32  # the bytes the job made, as recorded at creation
    assert _files_left(tmp_path) == []
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert not Path(record.local_dir).exists()
    report = tmp_path / "storage" / "reports" / "test-workstation" / f"{guid}.txt"
    assert "finalized" in report.read_text()
    assert not (tmp_path / "storage" / "hpc-work" / "assets" / guid).exists()  # the clean-up job removed it
    assert list((tmp_path / "storage" / "hpc-work" / "jobs").glob(f"{guid}-*")) == []  # forgot its jobs' folders


async def test_a_crash_is_retried_and_the_next_attempt_finishes(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars, {"barcode": ["crash", "ok"]}))
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    barcode = next(j for j in await daemon.store.jobs.of_asset(guid) if j.job == "barcode")
    assert (barcode.attempt, barcode.state) == (2, JobState.DONE)
    log = await _job_events(daemon, guid, "barcode")
    assert "exit code 3" in log
    assert "crashed on purpose" in log  # the stderr tail is in the job's log
    async with httpx.AsyncClient(base_url=daemon.api_url) as client:
        health = (await client.get("/health")).json()
        assert health["healthy"] is True
        assert {"ars", "hpc", "intake", "storage"} <= set(health["lanes"])
        assert "dispatcher" in health["actors"]
        metrics = (await client.get("/metrics")).text
        assert 'integration_jobs{state="done"} 3.0' in metrics
        assert 'integration_jobs{state="running"} 0.0' in metrics  # an emptied state reads 0
        assert 'integration_assets{state="finalized"} 1.0' in metrics


async def test_a_job_that_keeps_crashing_fails_the_asset_and_deletes_nothing(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars, {"barcode": ["crash", "crash"]}))
    await wait_for_states(daemon, {"failed": 1}, timeout=90)
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert "barcode failed in all 2 attempts" in record.reason
    assert "crashed on purpose" in record.reason
    assert "integration retry" in record.reason
    assert len(_files_left(tmp_path)) == 2  # nothing deleted
    assert Path(record.local_dir).exists()


async def test_an_operator_retry_after_a_processing_failure_resumes_processing_without_a_resync(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A failed processing asset holds nothing (its share closed, no job running); `integration retry` finds
    every file in ERDA, resumes at synced (never synchronized again) and processing finishes it."""
    ars = await serve_ars(nursery, tmp_path, share_dedup_s=0.5)  # ARS's 5-minute share de-dup, shortened
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    config = processing_config(tmp_path, ars, {"barcode": ["crash", "crash", "ok"]})
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"failed": 1}, timeout=90)
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        status = await client.get_status(guid)
    assert status is not None
    assert status.share_allocation_mb is None  # its processing share was closed when it failed
    code, output = await trio.to_thread.run_sync(
        run_cli, "retry", guid, "-c", str(tmp_path / "config.toml"), "--reason", "the module is fixed"
    )
    assert code == 0, output
    assert f"{guid}: moved -> synced" in output
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    triggers = [e.trigger for e in await daemon.store.assets.events(guid)]
    assert triggers.count("start_sync") == 1  # synchronized once, at intake; never again
    assert (await _barcode_job(daemon, guid)).attempt == 3


async def _barcode_job(daemon: Any, guid: str) -> Any:
    return next(j for j in await daemon.store.jobs.of_asset(guid) if j.job == "barcode")


async def test_a_hang_past_its_time_limit_is_stopped_and_retried(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    config = processing_config(
        tmp_path, ars, {"barcode": ["hang", "ok"]}, jobs={"barcode": {"time_limit_s": 2.0, "timeout_s": 30.0}}
    )
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    log = await _job_events(daemon, guid, "barcode")
    assert "start running" in log
    assert "time limit" in log


async def test_an_exit_without_a_report_is_lost_and_retried(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars, {"barcode": ["silent", "ok"]}))
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    log = await _job_events(daemon, guid, "barcode")
    assert "lose lost: it exited without reporting a result" in log


async def test_a_result_that_does_not_validate_fails_that_attempt(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars, {"barcode": ["invalid", "ok"]}))
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    log = await _job_events(daemon, guid, "barcode")
    assert "does not validate" in log
    assert "barcodes" in log  # names the field


async def test_a_failure_blamed_on_the_asset_is_not_retried(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars, {"barcode": ["asset", "ok"]}))
    await wait_for_states(daemon, {"failed": 1}, timeout=90)
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert "cannot succeed on this asset" in record.reason
    barcode = next(j for j in await daemon.store.jobs.of_asset(guid) if j.job == "barcode")
    assert barcode.attempt == 1


async def test_a_node_configuration_failure_pauses_the_hpc_lane_and_fails_no_asset(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """Every job would fail the same way (the nodes' configuration): the hpc lane pauses with the reason, other
    assets wait, none fails; once the cause is fixed, the probe asset's job gets through and all go on."""
    guids = write_session(tmp_path, "test-workstation", "s1", 3, seed=1)
    config = processing_config(tmp_path, ars, {"barcode": ["config"] * 50})
    daemon = await start_daemon(nursery, config)

    async def paused() -> bool:
        return daemon.lanes.lane("hpc").paused

    await wait_until(paused, timeout=60, what="the hpc lane paused")
    assert "configuration" in daemon.lanes.lane("hpc").reason
    await trio.sleep(2.0)
    counts = await daemon.store.assets.counts_by_state(guids)
    assert "failed" not in counts
    (tmp_path / "faults.json").write_text("{}")  # the nodes' configuration is fixed
    await wait_for_states(daemon, {"finalized": 3}, timeout=120)
    assert not daemon.lanes.lane("hpc").paused


async def test_a_device_target_cancels_the_waiting_jobs_but_not_the_cleanup(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    config = processing_config(
        tmp_path, ars, {"barcode": ["device_target"]}, pipeline=[["asset_loader"], ["barcode"], ["ocr"], ["cleanup"]]
    )
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)
    states = {j.job: j.state for j in await daemon.store.jobs.of_asset(guid)}
    assert states == {"asset_loader": JobState.DONE, "barcode": JobState.DONE, "ocr": JobState.CANCELLED,
                      "cleanup": JobState.DONE}  # fmt: skip
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        document = await client.get_asset_document(guid)
    assert document is not None
    assert document["tags"]["asset_type"] == "device target"


async def test_a_share_that_cannot_be_reopened_waits_and_goes_on_once_it_can(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """DISK_FULL on re-opening: nothing is lost or failed; the asset waits and goes on when there is room."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    daemon = await start_daemon(nursery, processing_config(tmp_path, ars))
    await wait_for_states(daemon, {"syncing": 1}, timeout=60)
    ars.emulator.update_faults({"disk_full": True})
    await trio.sleep(2.0)
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert record.state.value in ("synced", "paused")
    ars.emulator.update_faults({"disk_full": False})
    await wait_for_states(daemon, {"finalized": 1}, timeout=90)


async def _synced_without_processing(tmp_path: Path, ars: ArsServer) -> str:
    """One asset taken to synced by a daemon without processing (executor "none"), which then stops."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    async with trio.open_nursery() as first:
        daemon = await start_daemon(first, make_config(tmp_path, ars.port))
        await wait_for_states(daemon, {"synced": 1}, timeout=60)
        first.cancel_scope.cancel()
    return guid


async def test_our_own_share_whose_answer_was_lost_is_taken_after_a_restart(tmp_path: Path, ars: ArsServer) -> None:
    """Our re-open went through but its answer was lost (the intent is open), then a restart: the open share is
    ours and is used, never a second one."""
    guid = await _synced_without_processing(tmp_path, ars)
    config = processing_config(tmp_path, ars)
    async with open_store(Path(config.storage.database)) as store:
        await store.assets.open_intent(guid, "open_share", expected=AssetState.SYNCED, actor="test")
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        await client.open_share(guid, institution="test-institution", collection="test-collection", allocation_mb=5)
    async with trio.open_nursery() as second:
        daemon = await start_daemon(second, config)
        await wait_for_states(daemon, {"finalized": 1}, timeout=90)
        events = await daemon.store.assets.events(guid)
        assert any("our earlier request went through" in e.reason for e in events)
        second.cancel_scope.cancel()


async def test_a_share_someone_else_opened_is_waited_for_not_taken(tmp_path: Path, ars: ArsServer) -> None:
    """A share open without our request (someone works on the asset in ARS) is not ours to discard: the asset
    waits in synced, saying why; the share stays open and no job starts."""
    guid = await _synced_without_processing(tmp_path, ars)
    config = processing_config(tmp_path, ars)
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        await client.open_share(guid, institution="test-institution", collection="test-collection", allocation_mb=5)
        async with trio.open_nursery() as second:
            daemon = await start_daemon(second, config)

            async def waiting() -> bool:
                record = await daemon.store.assets.get(guid)
                return record is not None and "not by us" in (record.wake.reason if record.wake else "")

            await wait_until(waiting, timeout=30, what="the asset waiting for the other share")
            await trio.sleep(1.0)
            assert (await daemon.store.assets.get(guid)).state is AssetState.SYNCED  # type: ignore[union-attr]
            assert await daemon.store.jobs.of_asset(guid) == []
            status = await client.get_status(guid)
            assert status is not None
            assert status.share_allocation_mb is not None  # not discarded
            second.cancel_scope.cancel()


async def test_a_preparation_type_ars_refuses_holds_the_collection_and_fails_nothing(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """ARS refusing the specimens' preparation type is a problem of the whole collection (the configuration):
    the collection is held with ARS's words, no asset fails, nothing is deleted."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
    faults = {"barcode": [_barcode_result(["NHMD-0001"], "specimen")]}
    config = processing_config(tmp_path, ars, faults, processing={"preparation_type": "bogus"})
    daemon = await start_daemon(nursery, config)

    async def held() -> bool:
        return any(name.startswith("hold:collection") for name in daemon.lanes.holds)

    await wait_until(held, timeout=90, what="the collection held")
    record = await daemon.store.assets.get(guid)
    assert record is not None
    assert record.state.value == "processing"
    hold = next(lane for name, lane in daemon.lanes.holds.items() if name.startswith("hold:collection"))
    assert "preparation" in hold.reason.lower()
    assert len(_files_left(tmp_path)) == 2


def _barcode_result(codes: list[str], subject: str, *, disposable: str | None = None) -> dict[str, Any]:
    """A fault-runner step that reports this barcode result."""
    label = subject == "label"
    return {"result": {"barcodes": codes, "asset_subject": subject, "MSO": len(codes) > 1,
                       "MOS": disposable is not None, "label": label, "disposable": disposable}}  # fmt: skip


async def test_a_mos_label_and_its_specimens_are_linked_through_the_pipeline(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A label and two specimens photographed with disposable MOS-123 on one workstation and day: all three end
    linked in the store and share ARS's mos_id; the label's specimens are the first barcodes of the other two,
    whichever order their results were written in; the specimens keep their own."""
    lab, first, second = write_session(tmp_path, "test-workstation", "s1", 3, seed=1)
    faults = {"barcode": {
        lab: [_barcode_result(["MOS-123"], "label", disposable="MOS-123")],
        first: [_barcode_result(["NHMD-1001", "NHMD-1002"], "specimen", disposable="MOS-123")],
        second: [_barcode_result(["NHMD-2001"], "specimen", disposable="MOS-123")],
    }}  # fmt: skip
    config = processing_config(tmp_path, ars, faults)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"finalized": 3}, timeout=120)
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        documents = {guid: await client.get_asset_document(guid) for guid in (lab, first, second)}
    specimens = {guid: sorted(s["specimen"]["barcode"] for s in doc["asset_specimen"])  # type: ignore[index]
                 for guid, doc in documents.items()}  # fmt: skip
    assert specimens == {lab: ["NHMD-1001", "NHMD-2001"], first: ["NHMD-1001", "NHMD-1002"], second: ["NHMD-2001"]}
    day = json.loads(await daemon.store.assets.metadata_json(lab) or b"{}")["date_asset_taken"][:10]
    assert {doc["mos_id"] for doc in documents.values()} == {f"test-workstation_{day}_MOS-123"}  # type: ignore[index]
    for guid in (lab, first, second):
        entry = await daemon.store.mos.get(guid)
        assert entry is not None
        assert set(entry.connections) == {lab, first, second} - {guid}
    code, shown = run_cli("status", "-c", str(tmp_path / "config.toml"), lab)
    assert code == 0, shown
    mos_line = " ".join(shown.split("MOS:", 1)[1].split("\n  events")[0].split())
    assert mos_line.startswith(f"label id {entry.unique_label_id} (the label); linked with")
    assert first in mos_line
    assert second in mos_line
    assert max(len(line) for line in shown.splitlines()) <= 80


async def test_results_keep_what_others_wrote_on_the_ars_record(tmp_path: Path, ars: ArsServer) -> None:
    """A curator's tag and MOS id set on the record before processing ends survive our full-record update,
    next to what processing writes."""
    guid = await _synced_without_processing(tmp_path, ars)
    config = processing_config(tmp_path, ars, {"barcode": ["device_target"]})
    async with open_ars_client(config.ars, config.retry, secret="test-secret") as client:
        document = await client.get_asset_document(guid)
        assert document is not None
        body = {key: value for key, value in document.items() if key in WRITABLE_FIELDS}
        await client.update_asset(guid, {**body, "tags": {**(document.get("tags") or {}), "curator": "checked"},
                                         "mos_id": "MOS-42"})  # fmt: skip
        async with trio.open_nursery() as second:
            daemon = await start_daemon(second, config)
            await wait_for_states(daemon, {"finalized": 1}, timeout=90)
            second.cancel_scope.cancel()
        after = await client.get_asset_document(guid)
    assert after is not None
    assert after["tags"]["curator"] == "checked"
    assert after["mos_id"] == "MOS-42"
    assert after["tags"]["asset_type"] == "device target"
