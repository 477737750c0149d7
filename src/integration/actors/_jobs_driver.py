"""The jobs of one asset, moved by its actor: plan, reconcile with the executor (the watchdog), retry or give
up, submit the next group.

Nothing here waits: each call looks at the jobs once, does what is due, and says when to look again. A job's
news comes by callback (the API moves the job and wakes the asset) or by the executor (a job that exited wakes
the asset; the watchdog asks the executor about every job in flight whenever the asset is looked at).
"""

from __future__ import annotations

import math

import msgspec
import structlog

from integration.actors._deps import AssetDeps
from integration.errors import (
    ConfigError,
    GroupHeld,
    HpcUnavailable,
    IllegalTransition,
    IntegrationError,
    RetriesExhausted,
    StaleAttempt,
)
from integration.state_machines import JOB_ACTIVE_STATES, JobState, JobTrigger
from integration.store import AssetRecord, JobRecord

__all__ = [
    "ACTOR",
    "JobsGaveUp",
    "JobsView",
    "advance_jobs",
    "cancel_waiting",
    "current_group",
    "plan_jobs",
    "restart_failed",
    "submit_next",
]

log = structlog.get_logger()

ACTOR = "job-driver"
#: A job that exited this long ago without its callback having arrived is settled from the executor's view.
CALLBACK_GRACE_S = 2.0
#: Marks a loss that is not the job's doing (the daemon stopped): its retry does not count against the limit.
INTERRUPTED = "[interrupted]"
#: Marks a failure of the nodes' configuration (every job would meet it): the hpc lane pauses, no count.
CONFIG = "[config]"
#: Exit codes that mean every job would end the same way: the runner's "this node's configuration is wrong"
#: (2: its token or secret refused), "the daemon cannot be reached" (75: a wrong api.public_url, a firewall),
#: and the shell's "command not found" (127: a wrong [executor] runner).
SITE_EXIT_CODES = {2: "the node's configuration", 75: "the daemon's API unreachable from the node",
                   127: "the runner command not found"}  # fmt: skip
#: How often jobs in flight are reconciled with the executor even without news (a lost wake-up, a remote node).
RECONCILE_S = 30.0


class JobsGaveUp(Exception):
    """A job failed for good: the asset fails with ``reason`` (the job's own words and stderr tail)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobsView(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[JobRecord]
    next_look: float  # when to look again without news


async def plan_jobs(record: AssetRecord, deps: AssetDeps) -> list[JobRecord]:
    """The asset's jobs, planned from its pipeline if they are not yet."""
    pipeline = deps.config.pipelines.get(record.pipeline)
    if pipeline is None:  # every asset of the pipeline meets this: hold them, fail none
        raise GroupHeld(
            f"pipeline {record.pipeline!r} is not in the configuration's [pipelines]: add it", group_kind="pipeline"
        )
    groups = [[(job, deps.config.jobs[job].module) for job in group] for group in pipeline.jobs]
    return await deps.store.jobs.plan(record.guid, groups, actor=ACTOR)


async def advance_jobs(record: AssetRecord, deps: AssetDeps) -> JobsView:
    """Reconcile with the executor and retry what is due; returns the jobs as they are now and when to look
    again (``submit_next`` hands out the next group once the results so far are applied)."""
    jobs = await plan_jobs(record, deps)
    now = deps.clock()
    next_look = now + RECONCILE_S
    jobs, settled_look = await _reconcile(jobs, deps, now)
    next_look = min(next_look, settled_look)
    jobs, retry_look = await _retry(jobs, deps, now)
    return JobsView(jobs=jobs, next_look=min(next_look, retry_look))


async def restart_failed(record: AssetRecord, deps: AssetDeps, reason: str) -> None:
    """An operator's retry: each failed or lost job gets one more attempt beyond its limit — once its old
    attempt is gone (one still stopping is left failed: the watchdog's retry takes it once it is gone)."""
    jobs = [job for job in await deps.store.jobs.of_asset(record.guid) if job.state in (JobState.FAILED, JobState.LOST)]
    seen = await deps.executor.status([job.key for job in jobs]) if jobs and deps.executor else {}
    for job in jobs:
        view = seen.get(job.key)
        if view is None or view.seen not in ("queued", "running"):
            await deps.store.jobs.retry(job.guid, job.job, attempt=job.attempt, max_attempts=job.attempt + 1,
                                        actor=ACTOR, reason=reason)  # fmt: skip


def current_group(jobs: list[JobRecord]) -> int | None:
    """The first group with a job not done or cancelled (None: all are)."""
    open_groups = [job.group for job in jobs if job.state not in (JobState.DONE, JobState.CANCELLED)]
    return min(open_groups) if open_groups else None


async def _reconcile(jobs: list[JobRecord], deps: AssetDeps, now: float) -> tuple[list[JobRecord], float]:
    """The watchdog: what the executor sees of each job in flight settles the jobs whose news did not come."""
    in_flight = [job for job in jobs if job.state in JOB_ACTIVE_STATES]
    executor = deps.executor
    if not in_flight or executor is None:
        return jobs, math.inf
    seen = await executor.status([job.key for job in in_flight])
    next_look = math.inf
    for job in in_flight:
        view = seen.get(job.key)
        config = deps.config.jobs.get(job.job)
        timeout = config.timeout_s if config else 3600.0
        if view is None or view.seen == "unknown":
            if job.state is JobState.SUBMITTED or job.state_since < deps.started_at:
                # persisted, then the daemon stopped before handing it over; or queued (never started) under the
                # last daemon, whose executor forgot it when it stopped: not the job's doing
                await _move(job, deps, JobTrigger.LOSE, f"{INTERRUPTED} the executor does not have it: the daemon "
                            "stopped before it ran")  # fmt: skip
            else:
                await _move(job, deps, JobTrigger.LOSE, "the executor no longer knows it")
        elif view.seen == "exited":
            if now - job.state_since < CALLBACK_GRACE_S and job.state is JobState.SUBMITTED:
                next_look = min(next_look, job.state_since + CALLBACK_GRACE_S)
                continue
            tail = await _stderr(deps, job)
            if view.interrupted:
                await _move(job, deps, JobTrigger.LOSE, f"{INTERRUPTED} {view.note}")
            elif view.exit_code == 0:
                await _move(job, deps, JobTrigger.LOSE, f"it exited without reporting a result{_note(view.note)}{tail}")
            else:
                code = f"exit code {view.exit_code}" if view.exit_code is not None else "no exit code"
                site = SITE_EXIT_CODES.get(view.exit_code or 0)
                blame = f"{CONFIG} ({site})" if site else "[node]"
                await _move(job, deps, JobTrigger.FAIL, f"{blame} it ended with {code}{_note(view.note)}{tail}")
        elif view.seen == "queued":  # queued behind others: alive while the executor knows it
            next_look = min(next_look, now + RECONCILE_S)
        elif now - job.state_since > timeout:
            await executor.cancel(job.key)
            tail = await _stderr(deps, job)
            await _move(job, deps, JobTrigger.FAIL, f"[node] no news for {timeout:.0f} s (the job's timeout_s): "
                        f"stopped{tail}")  # fmt: skip
        else:
            next_look = min(next_look, job.state_since + timeout)
    return await deps.store.jobs.of_asset(jobs[0].guid), next_look


async def _retry(jobs: list[JobRecord], deps: AssetDeps, now: float) -> tuple[list[JobRecord], float]:
    """Failed and lost jobs get their next attempt after a back-off, within their retry limit, once the executor
    says the old attempt is gone (never two at once); an asset's own data error and an exhausted limit end the
    processing (JobsGaveUp); a failure every job would meet (the nodes' configuration) pauses the hpc lane."""
    next_look = math.inf
    changed = False
    settled = [job for job in jobs if job.state in (JobState.FAILED, JobState.LOST)]
    seen = await deps.executor.status([job.key for job in settled]) if settled and deps.executor else {}
    for job in settled:
        if job.reason.startswith("[asset]"):
            raise JobsGaveUp(f"job {job.job} (attempt {job.attempt}) cannot succeed on this asset: {job.reason}")
        view = seen.get(job.key)
        if view is not None and view.seen in ("queued", "running"):  # reported failed, still running: stop it first
            if deps.executor is not None:
                await deps.executor.cancel(job.key)  # idempotent; the executor kills it after its grace
            next_look = min(next_look, now + 1.0)
            continue
        site_wide = job.reason.startswith(CONFIG)
        config = deps.config.jobs.get(job.job)
        retries = config.retries if config else 0
        # attempts the daemon's own stop interrupted, or a site-wide cause stopped, do not count
        retries += sum(
            1
            for event in await deps.store.jobs.events(job.guid, job.job)
            if event.trigger in (JobTrigger.LOSE.value, JobTrigger.FAIL.value)
            and event.reason.startswith((INTERRUPTED, CONFIG))
        )
        due = job.state_since + min(deps.config.retry.max_s, deps.config.retry.initial_s * 2 ** (job.attempt - 1))
        if not site_wide and job.attempt <= retries and due > now:
            next_look = min(next_look, due)
            continue
        try:
            why = f"attempt {job.attempt} {job.state.value}: {job.reason[:300]}"
            await deps.store.jobs.retry(
                job.guid, job.job, attempt=job.attempt, max_attempts=retries + 1, actor=ACTOR, reason=why
            )
        except RetriesExhausted as exc:
            raise JobsGaveUp(
                f"job {job.job} {job.state.value} in all {exc.attempts} attempts; the last: {job.reason}. Fix the "
                f"cause, then `integration retry {job.guid} --reason TEXT`"
            ) from exc
        except (StaleAttempt, IllegalTransition):
            continue  # a late callback moved it meanwhile: looked at again next time
        changed = True
        if site_wide:
            # its next attempt waits; the lane pauses (or, for its probe, the probe failed): every asset waits
            raise HpcUnavailable(
                f"job {job.job} of {job.guid} could not run because of the nodes' configuration: "
                f"{job.reason.removeprefix(CONFIG).strip()[:500]}",
                guid=job.guid,
            )
    return (await deps.store.jobs.of_asset(jobs[0].guid) if changed else jobs), next_look


async def submit_next(jobs: list[JobRecord], deps: AssetDeps) -> list[JobRecord]:
    """Hand the current group's waiting jobs to the executor (persisted as submitted first: a crash in between
    leaves a job the executor does not know, which the watchdog marks lost and retries under a new key)."""
    group = current_group(jobs)
    executor, spec_of = deps.executor, deps.job_spec
    if group is None or executor is None or spec_of is None:
        return jobs
    waiting = [job for job in jobs if job.group == group and job.state is JobState.WAITING]
    for job in waiting:
        if job.job not in deps.config.jobs:  # renamed or removed from the configuration since it was planned
            raise GroupHeld(
                f"job {job.job!r} of this asset's pipeline is no longer in the configuration's "
                "[jobs]: put it back (or finish these assets with the old configuration)",
                group_kind="pipeline",
            )
        spec = spec_of(job)
        moved = await deps.store.jobs.transition(job.guid, job.job, JobTrigger.SUBMIT, attempt=job.attempt,
                                                 actor=ACTOR, reason="handed to the executor")  # fmt: skip
        try:
            seen = await executor.submit(spec)
        except ConfigError as exc:  # the executor cannot start any job (its folder, its command)
            await _move(moved, deps, JobTrigger.FAIL, f"{CONFIG} the executor cannot start jobs: {exc}")
            continue
        except IntegrationError as exc:
            await _move(moved, deps, JobTrigger.FAIL, f"[node] the executor refused it: {exc}")
            continue
        if seen.seen in ("queued", "running"):
            await _move(moved, deps, JobTrigger.QUEUE, f"queued as {seen.executor_id or seen.key}",
                        executor_id=seen.executor_id)  # fmt: skip
    return await deps.store.jobs.of_asset(jobs[0].guid) if waiting else jobs


async def cancel_waiting(jobs: list[JobRecord], deps: AssetDeps, reason: str) -> int:
    """Cancel the asset's waiting jobs (a device target needs no further processing) but its clean-up, which
    still removes the asset's files from the node; returns how many."""
    count = 0
    for job in jobs:
        if job.state is JobState.WAITING and job.module != "cleanup":
            await _move(job, deps, JobTrigger.CANCEL, reason)
            count += 1
    return count


async def _move(
    job: JobRecord, deps: AssetDeps, trigger: JobTrigger, reason: str, *, executor_id: str | None = None
) -> None:
    try:
        await deps.store.jobs.transition(job.guid, job.job, trigger, attempt=job.attempt, actor=ACTOR, reason=reason,
                                         executor_id=executor_id)  # fmt: skip
    except (StaleAttempt, IllegalTransition):
        log.info("job_moved_meanwhile", job_key=job.key, trigger=trigger.value)  # a callback got there first


async def _stderr(deps: AssetDeps, job: JobRecord) -> str:
    if deps.executor is None:
        return ""
    try:
        tail = await deps.executor.stderr_tail(job.key, lines=20)
    except IntegrationError:
        return ""
    return f"\nstderr (last lines):\n{tail}" if tail.strip() else ""


def _note(note: str) -> str:
    return f" ({note})" if note else ""
