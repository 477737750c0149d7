"""The job repository: planning, transitions with events, stale attempts refused, bounded retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.errors import IllegalTransition, RetriesExhausted, StaleAttempt, UnknownJob
from integration.state_machines import JobState, JobTrigger
from integration.store import open_store

from .test_store import new_asset

GROUPS = [[("asset_loader", "asset_loader")], [("barcode", "barcode"), ("ocr", "ocr")], [("cleanup", "cleanup")]]


async def test_plan_creates_waiting_jobs_in_pipeline_order_once(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        jobs = await store.jobs.plan("g", GROUPS, actor="test")
        assert [(j.job, j.group, j.state, j.attempt) for j in jobs] == [
            ("asset_loader", 0, JobState.WAITING, 1),
            ("barcode", 1, JobState.WAITING, 1),
            ("ocr", 1, JobState.WAITING, 1),
            ("cleanup", 2, JobState.WAITING, 1),
        ]
        assert jobs[1].key == "g-barcode-1"
        again = await store.jobs.plan("g", GROUPS, actor="test")  # a second plan changes nothing
        assert again == jobs
        assert len(await store.jobs.events("g", "barcode")) == 1


async def test_a_transition_records_its_event_and_result(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        await store.jobs.transition("g", "barcode", JobTrigger.SUBMIT, attempt=1, actor="t", executor_id="4711")
        done = await store.jobs.transition(
            "g",
            "barcode",
            JobTrigger.FINISH,
            attempt=1,
            actor="api",
            result=b'{"barcodes": []}',
            module_version="1.0.0",
        )
        assert (done.state, done.executor_id, done.result, done.module_version) == (
            JobState.DONE, "4711", b'{"barcodes": []}', "1.0.0",
        )  # fmt: skip
        events = await store.jobs.events("g", "barcode")
        assert [(e.from_state, e.to_state, e.trigger) for e in events] == [
            (None, "waiting", "plan"), ("waiting", "submitted", "submit"), ("submitted", "done", "finish"),
        ]  # fmt: skip


async def test_a_stale_attempt_or_an_illegal_trigger_changes_nothing(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        with pytest.raises(IllegalTransition):
            await store.jobs.transition("g", "ocr", JobTrigger.FINISH, attempt=1, actor="api")  # never submitted
        with pytest.raises(StaleAttempt):
            await store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=2, actor="t")  # no attempt 2 yet
        with pytest.raises(UnknownJob):
            await store.jobs.transition("g", "unknown", JobTrigger.SUBMIT, attempt=1, actor="t")
        with pytest.raises(IllegalTransition):  # retry has its own method, with its limit and a new key
            await store.jobs.transition("g", "ocr", JobTrigger.RETRY, attempt=1, actor="t", reason="x")
        [ocr] = [j for j in await store.jobs.of_asset("g") if j.job == "ocr"]
        assert ocr.state is JobState.WAITING
        assert len(await store.jobs.events("g", "ocr")) == 1


async def test_retries_start_new_attempts_until_the_limit(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        for attempt in (1, 2):
            await store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=attempt, actor="t", executor_id="9")
            await store.jobs.transition("g", "ocr", JobTrigger.FAIL, attempt=attempt, actor="api", reason="exit 1")
            retried = await store.jobs.retry("g", "ocr", attempt=attempt, max_attempts=3, actor="t", reason="again")
            assert (retried.state, retried.attempt, retried.key, retried.executor_id) == (
                JobState.WAITING, attempt + 1, f"g-ocr-{attempt + 1}", "",
            )  # fmt: skip
        with pytest.raises(StaleAttempt):  # the failed callback of attempt 1 arrives late: stale
            await store.jobs.transition("g", "ocr", JobTrigger.FINISH, attempt=1, actor="api")
        await store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=3, actor="t")
        await store.jobs.transition("g", "ocr", JobTrigger.LOSE, attempt=3, actor="watchdog", reason="no news")
        with pytest.raises(RetriesExhausted) as exhausted:
            await store.jobs.retry("g", "ocr", attempt=3, max_attempts=3, actor="t", reason="again")
        assert (exhausted.value.guid, exhausted.value.job, exhausted.value.attempts) == ("g", "ocr", 3)
        events = await store.jobs.events("g", "ocr")
        assert [e.entity_id for e in events][-1] == "g-ocr-3"
        assert len(events) == 1 + 3 * 2 + 2  # plan, 3 x (submit, fail|lose), 2 retries


async def test_jobs_survive_a_reopen(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        await store.jobs.transition("g", "asset_loader", JobTrigger.SUBMIT, attempt=1, actor="t")
    async with open_store(tmp_path / "t.db") as store:
        [loader] = [j for j in await store.jobs.of_asset("g") if j.job == "asset_loader"]
        assert loader.state is JobState.SUBMITTED


async def test_a_job_that_may_still_run_is_not_retried_even_at_its_limit(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        await store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=1, actor="t")
        with pytest.raises(IllegalTransition) as refused:
            await store.jobs.retry("g", "ocr", attempt=1, max_attempts=1, actor="t", reason="again")
        assert not isinstance(refused.value, RetriesExhausted)  # not a reason to fail the asset


async def test_a_result_is_kept_by_later_steps_and_cleared_by_a_retry(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", GROUPS, actor="test")
        await store.jobs.transition("g", "ocr", JobTrigger.SUBMIT, attempt=1, actor="t", executor_id="7")
        await store.jobs.transition("g", "ocr", JobTrigger.START, attempt=1, actor="api", module_version="1.0.0")
        failed = await store.jobs.transition(
            "g", "ocr", JobTrigger.FAIL, attempt=1, actor="api", result=b'{"partial": true}', reason="exit 1"
        )
        assert (failed.result, failed.module_version, failed.executor_id) == (b'{"partial": true}', "1.0.0", "7")
        retried = await store.jobs.retry("g", "ocr", attempt=1, max_attempts=2, actor="t", reason="again")
        assert (retried.result, retried.module_version, retried.executor_id) == (None, "", "")
        await store.jobs.transition("g", "barcode", JobTrigger.SUBMIT, attempt=1, actor="t")
        await store.jobs.transition("g", "barcode", JobTrigger.FAIL, attempt=1, actor="api", result=b"{}")
        cancelled = await store.jobs.transition("g", "barcode", JobTrigger.CANCEL, attempt=1, actor="t")
        assert cancelled.result == b"{}"  # a step without a result keeps the one recorded


async def test_plan_refuses_an_unknown_asset_and_a_name_that_breaks_keys(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        with pytest.raises(UnknownJob):
            await store.jobs.plan("nobody", GROUPS, actor="test")
        await store.assets.record_ingested(new_asset("g"), actor="test")
        with pytest.raises(ValueError, match="job name"):
            await store.jobs.plan("g", [[("crop-derivatives", "crop_derivatives")]], actor="test")
        assert await store.jobs.of_asset("g") == []
