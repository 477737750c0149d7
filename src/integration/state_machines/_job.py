"""The processing-job lifecycle: one pipeline job of one asset, one attempt at a time, as a table.

A job is created ``waiting`` when its asset's pipeline is planned; the daemon submits it to an executor
(``submitted``); the executor reports it ``queued``; the runner on the node reports ``running``, then ``done``
(with the module's result) or ``failed`` (with its stderr tail). The watchdog marks a job ``lost`` when the
executor no longer knows it. ``failed`` and ``lost`` go back to ``waiting`` for the next attempt (the store
counts attempts against the job's retry limit; the table only says it is allowed) or stay for a human.

Order tolerance: callbacks can arrive out of order, so ``finish`` and ``fail`` are accepted from ``submitted``
and ``queued`` as well as ``running`` (a "finished" before its "started" is fine), and a job marked ``lost``
whose runner reports after all is taken back (``start`` / ``finish`` / ``fail`` from ``lost``). A late duplicate
for a job already ``done`` is not a transition: the caller answers it as before without applying anything.
"""

from __future__ import annotations

import enum

from integration.state_machines._machine import MachineSpec, Outcome, Row

__all__ = [
    "JOB_ACTIVE_STATES",
    "JOB_MACHINE",
    "JOB_TABLE",
    "JOB_TERMINAL_STATES",
    "JobState",
    "JobTrigger",
    "apply_job",
]


class JobState(enum.StrEnum):
    """Where one attempt of one pipeline job of one asset is."""

    WAITING = "waiting"  # planned; waits for its group's turn and a free executor slot
    SUBMITTED = "submitted"  # handed to the executor with its idempotency key (asset GUID + job + attempt)
    QUEUED = "queued"  # the executor queued it (a Slurm job id, a local PID)
    RUNNING = "running"  # the runner on the node reported it started
    DONE = "done"  # the runner reported its result, which validated; recorded with the module's version
    FAILED = "failed"  # the runner reported a failure, or it ran past its timeout (stderr tail recorded)
    LOST = "lost"  # no news past its timeout and the executor no longer knows it
    CANCELLED = "cancelled"  # not needed any more (a device target drops the waiting jobs) or stopped by us


class JobTrigger(enum.StrEnum):
    """Events that move a job."""

    PLAN = "plan"  # the asset's pipeline was planned (creates the job)
    SUBMIT = "submit"  # the executor accepted it
    QUEUE = "queue"  # the executor (or a queue_job callback) says it is queued
    START = "start"  # the runner says it started
    FINISH = "finish"  # the runner reported a result that validated
    FAIL = "fail"  # the runner reported a failure, or the timeout passed with the executor saying it ended
    LOSE = "lose"  # the watchdog: no news past the timeout and the executor does not know it
    RETRY = "retry"  # another attempt (backward: needs a reason; the store bounds the attempts)
    CANCEL = "cancel"  # not needed any more


_IN_FLIGHT = (JobState.SUBMITTED, JobState.QUEUED, JobState.RUNNING)

JOB_TABLE: tuple[Row[JobState, JobTrigger], ...] = (
    Row(JobTrigger.PLAN, (), JobState.WAITING, "the asset's pipeline planned this job"),
    Row(JobTrigger.SUBMIT, (JobState.WAITING,), JobState.SUBMITTED, "the executor accepted it"),
    Row(JobTrigger.QUEUE, (JobState.SUBMITTED,), JobState.QUEUED, "the executor queued it"),
    Row(JobTrigger.START, (JobState.SUBMITTED, JobState.QUEUED, JobState.LOST), JobState.RUNNING,
        "the runner started it (a lost job whose runner reports after all is taken back)"),
    Row(JobTrigger.FINISH, (*_IN_FLIGHT, JobState.LOST), JobState.DONE,
        "its result arrived and validated (before or without a 'started': order-tolerant)"),
    Row(JobTrigger.FAIL, (*_IN_FLIGHT, JobState.LOST), JobState.FAILED,
        "the runner reported a failure, or it ran past its timeout"),
    Row(JobTrigger.LOSE, _IN_FLIGHT, JobState.LOST, "no news past its timeout, and the executor does not know it"),
    Row(JobTrigger.RETRY, (JobState.FAILED, JobState.LOST), JobState.WAITING,
        "another attempt, within the job's retry limit"),
    Row(JobTrigger.CANCEL, (JobState.WAITING, *_IN_FLIGHT, JobState.FAILED, JobState.LOST), JobState.CANCELLED,
        "not needed any more (a device target) or stopped by us"),
)  # fmt: skip

JOB_TERMINAL_STATES = frozenset({JobState.DONE, JobState.CANCELLED})
#: States in which a job may be running on some node: never two attempts of one job in these at once.
JOB_ACTIVE_STATES = frozenset(_IN_FLIGHT)

JOB_MACHINE: MachineSpec[JobState, JobTrigger] = MachineSpec(
    kind="job",
    states=JobState,
    triggers=JobTrigger,
    rows=JOB_TABLE,
    backward=frozenset({JobTrigger.RETRY}),
    terminal=JOB_TERMINAL_STATES,
)


def apply_job(state: JobState | None, trigger: JobTrigger, *, reason: str = "", job: str | None = None) -> JobState:
    """Where ``trigger`` takes a job in ``state``; raises :class:`IllegalTransition` when the table forbids it."""
    outcome: Outcome[JobState] = JOB_MACHINE.apply(state, trigger, reason=reason, entity=job)
    return outcome.state
