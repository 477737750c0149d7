"""The callback API in process (ASGI): authentication, idempotency, order tolerance, stale attempts, malformed
and oversized bodies, result validation, tickets, /health, /metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api_support import AUTH, BARCODE, TOKEN, api
from integration.state_machines import AssetState, AssetTrigger, JobState, JobTrigger


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}])
async def test_without_a_valid_token_nothing_changes(tmp_path: Path, headers: dict[str, str]) -> None:
    async with api(tmp_path) as a:
        before = await a.store.jobs.events("g", "barcode")
        answer = await a.post("g-barcode-1", "finished", {"module_version": "1", "result": BARCODE}, headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in answer.text
        assert (await a.job("barcode")).state is JobState.SUBMITTED
        assert await a.store.jobs.events("g", "barcode") == before
        assert a.woken == []
        assert (await a.client.get("/api/v1/jobs/g-barcode-1", headers=headers)).status_code == 401


async def test_finished_before_started_is_fine_and_duplicates_change_nothing(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        done = await a.post("g-barcode-1", "finished", {"module_version": "1.0.0", "result": BARCODE})
        assert done.status_code == 200
        assert done.json() == {"key": "g-barcode-1", "state": "done", "applied": True, "note": ""}
        assert a.woken == ["g"]  # the asset's actor is woken at once
        late_start = await a.post("g-barcode-1", "started", {"host": "n1", "pid": 7})
        assert late_start.json()["applied"] is False
        assert late_start.json()["state"] == "done"
        again = await a.post("g-barcode-1", "finished", {"module_version": "2.0.0", "result": {"barcodes": []}})
        assert again.status_code == 200
        assert again.json()["applied"] is False
        job = await a.job("barcode")
        assert (job.state, job.module_version) == (JobState.DONE, "1.0.0")  # the duplicate changed nothing
        assert msgspec.json.decode(job.result or b"")["barcodes"] == ["NHMD-1234"]
        assert a.woken == ["g"]
        assert (a.callbacks.applied, a.callbacks.stale) == (1, 2)


async def test_a_callback_of_an_earlier_attempt_is_answered_and_ignored(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        await a.post("g-barcode-1", "failed", {"reason": "oom", "kind": "node"})
        await a.store.jobs.retry("g", "barcode", attempt=1, max_attempts=3, actor="t", reason="again")
        late = await a.post("g-barcode-1", "finished", {"module_version": "1", "result": BARCODE})
        assert late.status_code == 200
        assert late.json()["applied"] is False
        assert "earlier attempt" in late.json()["note"]
        assert (await a.job("barcode")).state is JobState.WAITING
        assert (await a.client.get("/api/v1/jobs/g-barcode-1", headers=AUTH)).status_code == 409


@pytest.mark.parametrize("key", ["nobody-barcode-1", "g-nosuchjob-1", "not-a-key", "g-barcode-x"])
async def test_unknown_guids_jobs_and_malformed_keys_are_404(tmp_path: Path, key: str) -> None:
    async with api(tmp_path) as a:
        answer = await a.post(key, "started", {})
        assert answer.status_code == 404
        assert answer.json()["error"]


async def test_a_malformed_body_gets_422_naming_the_field(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        not_json = await a.client.post("/api/v1/jobs/g-barcode-1/failed", content=b"{not json", headers=AUTH)
        assert not_json.status_code == 422
        missing = await a.post("g-barcode-1", "failed", {"kind": "node"})
        assert missing.status_code == 422
        assert "reason" in missing.json()["error"]
        wrong_kind = await a.post("g-barcode-1", "failed", {"reason": "x", "kind": "weather"})
        assert "kind" in wrong_kind.json()["error"]
        for raw in (b'{"reason": "\xff\xfe"}', b"[" * 100_000):  # not UTF-8; nested past any parser's depth
            bad = await a.client.post("/api/v1/jobs/g-barcode-1/failed", content=raw, headers=AUTH)
            assert bad.status_code == 422
        extra = await a.post("g-barcode-1", "started", {"hots": "typo"})
        assert extra.status_code == 422
        assert "hots" in extra.json()["error"]
        assert (await a.job("barcode")).state is JobState.SUBMITTED


async def test_a_derivatives_result_about_another_asset_is_refused(tmp_path: Path) -> None:
    async with api(tmp_path, groups=[[("crop_derivatives", "crop_derivatives")]]) as a:
        await a.store.jobs.transition("g", "crop_derivatives", JobTrigger.SUBMIT, attempt=1, actor="t")
        item = {"guid": "g", "path": "/w/g.tif", "file_format": "tif", "size_bytes": 1, "crc32": 1, "metadata": {}}
        for result in ({"parent_guid": "other", "derivatives": []}, {"parent_guid": "g", "derivatives": [item]}):
            answer = await a.post("g-crop_derivatives-1", "finished", {"module_version": "1", "result": result})
            assert answer.status_code == 422
        job = next(j for j in await a.store.jobs.of_asset("g") if j.job == "crop_derivatives")
        assert job.state is JobState.FAILED
        assert "parent_guid" in job.reason


async def test_a_result_that_does_not_validate_fails_the_job_and_says_where(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        answer = await a.post("g-barcode-1", "finished", {"module_version": "1", "result": {"barcodes": "NHMD-1"}})
        assert answer.status_code == 422
        assert "barcodes" in answer.json()["error"]
        job = await a.job("barcode")
        assert job.state is JobState.FAILED
        assert "does not validate" in job.reason


# the test client's own body generator is left unfinished when the app answers early (ours is closed)
@pytest.mark.filterwarnings("ignore:Exception ignored in. <async_generator object AsyncIteratorByteStream")
async def test_an_oversized_body_gets_413_and_changes_nothing(tmp_path: Path) -> None:
    async with api(tmp_path, max_body_bytes=10_000) as a:
        big = {"module_version": "1", "result": {**BARCODE, "padding": "x" * 10_000_000}}
        answer = await a.post("g-barcode-1", "finished", big)
        assert answer.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it arrives
            for _ in range(100):
                yield b" " * 1000

        streamed = await a.client.post("/api/v1/jobs/g-barcode-1/finished", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413
        assert (await a.job("barcode")).state is JobState.SUBMITTED


async def test_late_callbacks_for_a_settled_job_of_an_asset_at_rest_change_nothing(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        await a.post("g-barcode-1", "finished", {"module_version": "1", "result": BARCODE})
        await a.store.assets.transition("g", AssetTrigger.FAIL, expected=AssetState.INGESTED, reason="x", actor="t")
        late_finish = {"module_version": "1", "result": BARCODE}
        for what, body in (("started", {}), ("failed", {"reason": "late"}), ("finished", late_finish)):
            answer = await a.post("g-barcode-1", what, body)
            assert answer.status_code == 200
            assert answer.json()["applied"] is False


async def test_the_ticket_lists_the_files_with_their_share_links(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        answer = await a.client.get("/api/v1/jobs/g-barcode-1", headers=AUTH)
        assert answer.status_code == 200
        ticket = answer.json()
        assert (ticket["guid"], ticket["job"], ticket["module"], ticket["attempt"]) == ("g", "barcode", "barcode", 1)
        assert ticket["files"] == [{"name": "g.tif", "url": "http://ars/file_proxy/api/assetfiles/i/c/g/g.tif",
                                    "crc32": 123, "size_bytes": 10, "kind": "image"}]  # fmt: skip
        assert ticket["metadata"]["asset_guid"] == "g"
        waiting = await a.client.get("/api/v1/jobs/g-ocr-1", headers=AUTH)
        assert waiting.status_code == 409  # not handed out: nothing to run


async def test_health_and_metrics_need_no_token_and_openapi_covers_every_route(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        assert (await a.client.get("/health")).json() == {"alive": True}
        assert b"integration_jobs" in (await a.client.get("/metrics")).content
        document = (await a.client.get("/api/v1/openapi.json")).json()
        routes = {route.path for route in a.client._transport.app.routes}  # type: ignore[attr-defined]
        api_routes = {path for path in routes if path.startswith(("/api/v1/jobs", "/health", "/metrics"))}
        assert api_routes <= set(document["paths"])
        schemas = document["components"]["schemas"]
        for ref in _refs(document):
            assert ref.removeprefix("#/components/schemas/") in schemas or ref.startswith("#/components/parameters/")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
