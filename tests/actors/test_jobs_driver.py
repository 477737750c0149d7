"""The job driver's watchdog and retries against a scripted executor: what each executor view settles a job
as, which retries count, and what pauses the hpc lane instead of failing assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from actor_support import harness
from integration.actors._deps import AssetDeps
from integration.actors._jobs_driver import JobsGaveUp, advance_jobs, submit_next
from integration.adapters.executors import JobSeen, JobSpec
from integration.errors import GroupHeld, HpcUnavailable
from integration.state_machines import JobState, JobTrigger
from integration.store import JobRecord
from store.test_store import new_asset


class ScriptedExecutor:
    """Reports what a test says it sees; records cancels and submits."""

    def __init__(self) -> None:
        self.seen: dict[str, JobSeen] = {}
        self.cancelled: list[str] = []
        self.submitted: list[str] = []

    async def submit(self, spec: JobSpec) -> JobSeen:
        self.submitted.append(spec.key)
        return JobSeen(key=spec.key, seen="queued", executor_id="4711")

    async def status(self, keys: list[str]) -> dict[str, JobSeen]:
        return {key: self.seen.get(key, JobSeen(key=key, seen="unknown")) for key in keys}

    async def cancel(self, key: str) -> JobSeen:
        self.cancelled.append(key)
        return JobSeen(key=key, seen="exited")

    async def stderr_tail(self, key: str, *, lines: int = 40) -> str:
        return "Traceback: the last words"

    async def forget(self, keys: list[str]) -> int:
        return sum(self.seen.pop(key, None) is not None for key in keys)


JOBS = {"barcode": {"module": "barcode", "time_limit_s": 60.0, "timeout_s": 100.0, "retries": 0}}


async def _deps(h: Any, executor: ScriptedExecutor) -> AssetDeps:
    await h.store.assets.record_ingested(new_asset("g", files=("tif",)), actor="t")
    return AssetDeps(store=h.store, ars=None, lanes=h.lanes, config=h.config, executor=executor,  # type: ignore[arg-type]
                     job_spec=lambda job: JobSpec(key=job.key, argv=["true"]), clock=trio.current_time)  # fmt: skip


async def _barcode(deps: AssetDeps) -> JobRecord:
    return next(j for j in await deps.store.jobs.of_asset("g") if j.job == "barcode")


async def _submitted(deps: AssetDeps, *, to: JobState = JobState.QUEUED) -> JobRecord:
    record = await deps.store.assets.get("g")
    assert record is not None
    jobs = await advance_jobs(record, deps)  # plans
    await submit_next(jobs.jobs, deps)
    if to is JobState.RUNNING:
        await deps.store.jobs.transition("g", "barcode", JobTrigger.START, attempt=1, actor="t")
    return await _barcode(deps)


def _settings(**jobs: Any) -> dict[str, Any]:
    return {"pipelines": {"p": {"jobs": [["barcode"]]}}, "jobs": {**JOBS, **jobs}}


async def test_a_queued_job_is_alive_while_the_executor_knows_it(tmp_path: Path, autojump_clock: Any) -> None:
    async with harness(tmp_path, **_settings()) as h:
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        job = await _submitted(deps)
        executor.seen[job.key] = JobSeen(key=job.key, seen="queued")
        await trio.sleep(10_000)  # far past timeout_s: queued behind other jobs is not "no news"
        await advance_jobs(await deps.store.assets.get("g"), deps)  # type: ignore[arg-type]
        assert (await _barcode(deps)).state is JobState.QUEUED
        assert executor.cancelled == []


async def test_a_running_job_without_news_past_its_timeout_is_stopped(tmp_path: Path, autojump_clock: Any) -> None:
    async with harness(tmp_path, **_settings(barcode={**JOBS["barcode"], "retries": 1})) as h:
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        job = await _submitted(deps, to=JobState.RUNNING)
        executor.seen[job.key] = JobSeen(key=job.key, seen="running")
        await trio.sleep(101)
        await advance_jobs(await deps.store.assets.get("g"), deps)  # type: ignore[arg-type]
        assert set(executor.cancelled) == {job.key}  # stopped (asked again while it still runs)
        events = await deps.store.jobs.events("g", "barcode")
        failed = next(e for e in events if e.trigger == "fail")
        assert "no news for 100 s" in failed.reason
        assert "the last words" in failed.reason


async def test_a_job_lost_before_the_executor_got_it_does_not_use_up_an_attempt(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with harness(tmp_path, **_settings()) as h:  # retries = 0
        deps = await _deps(h, ScriptedExecutor())
        record = await deps.store.assets.get("g")
        assert record is not None
        await advance_jobs(record, deps)  # planned
        await deps.store.jobs.transition("g", "barcode", JobTrigger.SUBMIT, attempt=1, actor="t")  # then a crash
        await advance_jobs(record, deps)  # the executor never had it: lost, interrupted
        await trio.sleep(60)
        await advance_jobs(record, deps)
        job = await _barcode(deps)
        assert (job.attempt, job.state) == (2, JobState.WAITING)


async def test_a_job_the_executor_forgot_while_queued_counts(tmp_path: Path, autojump_clock: Any) -> None:
    async with harness(tmp_path, **_settings()) as h:  # retries = 0
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        await _submitted(deps)  # queued; the executor then reports it unknown
        record = await deps.store.assets.get("g")
        with pytest.raises(JobsGaveUp, match="lost in all 1 attempts"):
            await advance_jobs(record, deps)  # type: ignore[arg-type]
        assert (await _barcode(deps)).reason == "the executor no longer knows it"


async def test_a_node_configuration_failure_pauses_the_hpc_lane_not_the_asset(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Exit code 2 (the runner could not even report: its token or secret refused) is the nodes' configuration:
    the next attempt waits and HpcUnavailable pauses the hpc lane; the retry does not count."""
    async with harness(tmp_path, **_settings()) as h:
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        job = await _submitted(deps)
        executor.seen[job.key] = JobSeen(key=job.key, seen="exited", exit_code=2)
        record = await deps.store.assets.get("g")
        with pytest.raises(HpcUnavailable):
            await advance_jobs(record, deps)  # type: ignore[arg-type]
        again = await _barcode(deps)
        assert (again.attempt, again.state) == (2, JobState.WAITING)


async def test_a_failed_attempt_still_stopping_is_not_followed_by_the_next(tmp_path: Path, autojump_clock: Any) -> None:
    async with harness(tmp_path, **_settings(barcode={**JOBS["barcode"], "retries": 2})) as h:
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        job = await _submitted(deps, to=JobState.RUNNING)
        await deps.store.jobs.transition("g", "barcode", JobTrigger.FAIL, attempt=1, actor="api", reason="[node] oom")
        executor.seen[job.key] = JobSeen(key=job.key, seen="running")  # its process has not ended yet
        await trio.sleep(60)
        view = await advance_jobs(await deps.store.assets.get("g"), deps)  # type: ignore[arg-type]
        assert (await _barcode(deps)).attempt == 1
        assert view.next_look <= trio.current_time() + 1.0
        executor.seen[job.key] = JobSeen(key=job.key, seen="exited", exit_code=1)
        await advance_jobs(await deps.store.assets.get("g"), deps)  # type: ignore[arg-type]
        assert (await _barcode(deps)).attempt == 2


async def test_a_job_gone_from_the_configuration_holds_the_pipeline(tmp_path: Path, autojump_clock: Any) -> None:
    async with harness(tmp_path, **_settings()) as h:
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        await deps.store.jobs.plan("g", [[("renamed_job", "barcode")]], actor="t")
        with pytest.raises(GroupHeld, match="no longer in the configuration"):
            await submit_next(await deps.store.jobs.of_asset("g"), deps)
        assert executor.submitted == []


async def test_a_queued_job_the_last_daemon_handed_out_does_not_use_up_an_attempt(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Queued (never started) when the daemon was killed: the restarted executor does not know it. Not the job's
    doing: retried without counting (the soak failed 310 assets before this rule)."""
    async with harness(tmp_path, **_settings()) as h:  # retries = 0
        executor = ScriptedExecutor()
        deps = await _deps(h, executor)
        await _submitted(deps)  # queued by the last daemon
        await trio.sleep(5)
        restarted = msgspec.structs.replace(deps, started_at=trio.current_time())
        record = await deps.store.assets.get("g")
        await advance_jobs(record, restarted)  # type: ignore[arg-type]
        await trio.sleep(60)
        await advance_jobs(record, restarted)  # type: ignore[arg-type]
        job = await _barcode(deps)
        assert (job.attempt, job.state) == (2, JobState.WAITING)
