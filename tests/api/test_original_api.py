"""The original HPC API's endpoints (original-integration.md §6.1) with the original's payloads, unchanged but
for the bearer token, mapped onto the same job callbacks: each call lands on the job's current attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from api_support import AUTH, api
from integration.state_machines import JobState, JobTrigger

DEV = "/dev/api/v1"


async def _post(a: Any, path: str, body: Any = None, **params: str) -> Any:
    return await a.client.post(f"{DEV}/{path}", json=body, params=params or None, headers=AUTH)


async def test_every_original_endpoint_needs_the_token(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        routes = [r for r in a.client._transport.app.routes if r.path.startswith(DEV)]  # type: ignore[attr-defined]
        assert len(routes) == 13  # the 14 of §6.1 but /dev/yo (liveness, as before)
        for route in routes:
            method = "GET" if "GET" in route.methods else "POST"
            answer = await a.client.request(method, route.path, json={})
            assert answer.status_code == 401, route.path
        assert (await a.client.get("/dev/yo")).status_code == 200


async def test_queue_start_and_barcode_with_the_original_payloads(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        job = {"guid": "g", "job_name": "barcode", "job_id": "12345", "timestamp": "2024-05-01T10:00:00"}
        assert (await _post(a, "queue_job", job)).json() is None
        assert (await _post(a, "start_job", job)).status_code == 200
        running = await a.job("barcode")
        assert (running.state, running.executor_id) == (JobState.RUNNING, "12345")
        barcode = {"guid": "g", "job": "barcode", "status": "DONE", "barcodes": ["NHMD-1234"],
                   "asset_subject": "specimen", "MSO": False, "MOS": False, "label": False,
                   "disposable": None}  # fmt: skip
        assert (await _post(a, "barcode", barcode)).status_code == 200
        done = await a.job("barcode")
        assert done.state is JobState.DONE
        assert msgspec.json.decode(done.result or b"")["barcodes"] == ["NHMD-1234"]
        again = await _post(a, "barcode", {**barcode, "barcodes": ["OTHER"]})  # a late duplicate: same answer
        assert (again.status_code, again.json()) == (200, None)
        assert msgspec.json.decode((await a.job("barcode")).result or b"")["barcodes"] == ["NHMD-1234"]
        assert a.woken == ["g", "g", "g"]


async def test_an_unknown_subject_is_refused_like_the_original_and_saves_nothing(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        barcode = {"guid": "g", "job": "barcode", "status": "DONE", "barcodes": ["X"], "asset_subject": "teapot",
                   "MSO": False, "MOS": False, "label": False, "disposable": None}  # fmt: skip
        answer = await _post(a, "barcode", barcode)
        assert answer.status_code == 422
        assert "asset_subject" in answer.json()["error"]
        assert (await a.job("barcode")).state is JobState.SUBMITTED


@pytest.mark.parametrize(("status", "expected"), [("RETRY", "[node]"), ("ERROR", "[asset]")])
async def test_failed_job_retry_and_error(tmp_path: Path, status: str, expected: str) -> None:
    async with api(tmp_path) as a:
        body = {"guid": "g", "job_name": "barcode", "job_id": "1", "timestamp": "2024-05-01T10:00:00",
                "fail_status": status, "hpc_message": "node 17 out of memory"}  # fmt: skip
        assert (await _post(a, "failed_job", body)).status_code == 200
        job = await a.job("barcode")
        assert job.state is JobState.FAILED
        assert job.reason.startswith(f"{expected} node 17 out of memory")


async def test_failed_job_paused_changes_nothing(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        body = {"guid": "g", "job_name": "barcode", "job_id": "-1", "timestamp": "2024-05-01T10:00:00",
                "fail_status": "PAUSED"}  # fmt: skip
        assert (await _post(a, "failed_job", body)).status_code == 200
        assert (await a.job("barcode")).state is JobState.SUBMITTED


async def test_asset_ready_and_update_asset_for_ocr(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        assert (await _post(a, "asset_ready", asset_guid="g")).status_code == 200
        assert (await a.job("asset_loader")).state is JobState.DONE
        await a.store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=1, actor="t")
        update = {"guid": "g", "job": "ocr", "status": "DONE", "data": {"tags": {"ocr": "Carex nigra L."}}}
        assert (await _post(a, "update_asset", update)).status_code == 200
        ocr = await a.job("ocr")
        assert ocr.state is JobState.DONE
        assert msgspec.json.decode(ocr.result or b"") == {"tags_ocr": "Carex nigra L."}


async def test_the_original_calls_match_the_current_attempt(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        job = {"guid": "g", "job_name": "barcode", "job_id": "1", "timestamp": "2024-05-01T10:00:00",
               "fail_status": "RETRY"}  # fmt: skip
        await _post(a, "failed_job", job)
        await a.store.jobs.retry("g", "barcode", attempt=1, max_attempts=3, actor="t", reason="again")
        await a.store.jobs.transition("g", "barcode", JobTrigger.SUBMIT, attempt=2, actor="t")
        await _post(a, "start_job", {**job, "job_id": "2"})
        current = await a.job("barcode")
        assert (current.attempt, current.state, current.executor_id) == (2, JobState.RUNNING, "2")
        late = await _post(a, "failed_job", {**job, "fail_status": "ERROR"})  # attempt 1's batch job, late
        assert (late.status_code, late.json()) == (200, None)
        assert (await a.job("barcode")).state is JobState.RUNNING  # not applied to attempt 2
        await _post(a, "failed_job", {**job, "job_id": "2"})
        assert (await a.job("barcode")).state is JobState.FAILED


async def test_unknown_assets_and_jobs_and_bad_bodies_are_422(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        job = {"guid": "nobody", "job_name": "barcode", "job_id": "1", "timestamp": "2024-05-01T10:00:00"}
        assert (await _post(a, "start_job", job)).status_code == 422
        assert (await _post(a, "start_job", {**job, "guid": "g", "job_name": "painting"})).status_code == 422
        missing = await _post(a, "start_job", {"guid": "g"})
        assert missing.status_code == 422
        assert "job_name" in missing.json()["error"]
        assert (await _post(a, "asset_ready")).status_code == 422  # no asset_guid


async def test_httplink_and_metadata_asset(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        link = await a.client.get(f"{DEV}/httplink", params={"asset_guid": "g"}, headers=AUTH)
        assert link.json() == {"link": "http://ars/file_proxy/api/assetfiles/i/c/g/g.tif"}
        metadata = await a.client.get(f"{DEV}/metadata_asset", params={"asset_guid": "g"}, headers=AUTH)
        assert metadata.json()["_id"] == "g"
        assert metadata.json()["asset_guid"] == "g"


async def test_the_derivative_calls_finish_the_derivative_job(tmp_path: Path) -> None:
    """/derivative + /derivative_file_info per derivative, /fail_derivative_creation, then update_asset
    (derivative, DONE): the crop_derivatives job finishes with those derivatives and the failure."""
    async with api(tmp_path, groups=[[("crop_derivatives", "crop_derivatives")]]) as a:
        await a.store.jobs.transition("g", "crop_derivatives", JobTrigger.SUBMIT, attempt=1, actor="t")
        child = "g-001"
        metadata = {"asset_guid": child, "parent_guid": "g", "file_format": "tif", "payload_type": "image"}
        assert (await _post(a, "derivative", metadata)).status_code == 200
        info = {"guid": child, "name": f"{child}.tif", "type": "tif", "check_sum": 4242, "file_size": 3}
        assert (await _post(a, "derivative_file_info", info)).status_code == 200
        assert (
            await _post(a, "fail_derivative_creation", {"guid": "g", "ppi": 72, "note": "too small"})
        ).status_code == 200
        done = {"guid": "g", "job": "derivative", "status": "DONE", "data": {}}
        assert (await _post(a, "update_asset", done)).status_code == 200
        job = next(j for j in await a.store.jobs.of_asset("g") if j.job == "crop_derivatives")
        assert job.state is JobState.DONE
        result = msgspec.json.decode(job.result or b"")
        assert [(d["guid"], d["path"], d["crc32"]) for d in result["derivatives"]] == [(child, f"{child}.tif", 4242)]
        assert result["failed"] == ["No derivative for ppi 72: too small"]
        orphan = await _post(a, "derivative_file_info", {**info, "guid": "unannounced"})
        assert orphan.status_code == 422
