"""The processing jobs of each asset: one row per (asset, job) with its attempt counter, moved by the job
machine (state_machines/_job.py) with an event per transition, all in one transaction.

A job's idempotency key is ``<guid>-<job>-<attempt>``: it travels to the node and back, and a transition for
another attempt than the stored one is refused (:class:`StaleAttempt`) — a callback of an earlier attempt is
stale. ``retry`` starts the next attempt only from failed/lost and while the job's attempts are below its limit;
its event is keyed by the attempt it ends, so each attempt's log runs from its first step to its retry.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from integration.errors import IllegalTransition, RetriesExhausted, StaleAttempt, UnknownJob
from integration.state_machines import JobState, JobTrigger, apply_job
from integration.store._core import EVENT_COLUMNS, event_from_row, insert_event
from integration.store._records import EventRecord
from integration.store._thread import DatabaseThread

__all__ = ["JOB_COLUMNS", "JobRecord", "JobRepository", "job_counts", "job_key", "select_jobs"]

_JOB_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # as config.JobName: no "-", so a key splits unambiguously
_NOT_BY_TRANSITION = frozenset({JobTrigger.PLAN, JobTrigger.RETRY})  # plan() and retry() keep their rules

JOB_COLUMNS = (
    "guid, job, grp, module, attempt, state, executor_id, module_version, result, reason, state_since, created_at, "
    "updated_at, applied"
)


def job_key(guid: str, job: str, attempt: int) -> str:
    """The idempotency key of one attempt of one job of one asset."""
    return f"{guid}-{job}-{attempt}"


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    job: str
    group: int  # position of its group in the pipeline (0 first); jobs of one group may run in parallel
    module: str
    attempt: int
    state: JobState
    executor_id: str
    module_version: str
    result: bytes | None  # the module's result document (JSON), once done
    reason: str
    state_since: float
    created_at: float
    updated_at: float
    applied: bool = False  # the daemon has acted on its result (barcodes to ARS, derivatives registered)

    @property
    def key(self) -> str:
        return job_key(self.guid, self.job, self.attempt)


def _from_row(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        guid=row[0], job=row[1], group=row[2], module=row[3], attempt=row[4], state=JobState(row[5]),
        executor_id=row[6], module_version=row[7], result=row[8], reason=row[9], state_since=row[10],
        created_at=row[11], updated_at=row[12], applied=bool(row[13]),
    )  # fmt: skip


class JobRepository:
    """Plan, read and move processing jobs."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def plan(self, guid: str, groups: Sequence[Sequence[tuple[str, str]]], *, actor: str) -> list[JobRecord]:
        """Create the asset's jobs, ``waiting``, from its pipeline's groups of (job, module); jobs that exist
        already are left as they are (planning twice is harmless). Returns all of the asset's jobs."""
        at = self._clock()

        for group in groups:
            for job, _ in group:
                if not _JOB_NAME.match(job):
                    raise ValueError(f"job name {job!r}: a-z, 0-9 and _ only (it becomes part of job keys)")

        def write(connection: sqlite3.Connection) -> list[JobRecord]:
            if connection.execute("SELECT 1 FROM assets WHERE guid = ?", (guid,)).fetchone() is None:
                raise UnknownJob(guid=guid, job="(any: no such asset)")
            existing = {row[0] for row in connection.execute("SELECT job FROM jobs WHERE guid = ?", (guid,))}
            for position, group in enumerate(groups):
                for job, module in group:
                    if job in existing:
                        continue
                    state = apply_job(None, JobTrigger.PLAN, job=job_key(guid, job, 1))
                    connection.execute(
                        "INSERT INTO jobs (guid, job, grp, module, state, state_since, created_at, updated_at) "
                        "VALUES (?,?,?,?,?,?,?,?)",
                        (guid, job, position, module, state.value, at, at, at),
                    )
                    planned = f"planned: group {position + 1}, module {module}"
                    insert_event(connection, entity_kind="job", entity_id=job_key(guid, job, 1), kind="transition",
                                 from_state=None, to_state=state.value, trigger=JobTrigger.PLAN.value,
                                 reason=planned, actor=actor, at=at)  # fmt: skip
                    existing.add(job)
            return select_jobs(connection, guid)

        result: list[JobRecord] = await self._db.call(write)
        return result

    async def events(self, guid: str, job: str) -> list[EventRecord]:
        """The job's audit log over all its attempts, oldest first."""

        def query(connection: sqlite3.Connection) -> list[EventRecord]:
            current = _one(connection, guid, job)
            keys = [job_key(guid, job, attempt) for attempt in range(1, current.attempt + 1)]
            rows = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_kind = 'job' AND entity_id IN "
                f"({','.join('?' * len(keys))}) ORDER BY id",
                keys,
            ).fetchall()
            return [event_from_row(row) for row in rows]

        result: list[EventRecord] = await self._db.call(query)
        return result

    async def of_asset(self, guid: str) -> list[JobRecord]:
        """The asset's jobs, in pipeline order."""
        result: list[JobRecord] = await self._db.call(lambda connection: select_jobs(connection, guid))
        return result

    async def transition(
        self,
        guid: str,
        job: str,
        trigger: JobTrigger,
        *,
        attempt: int,
        actor: str,
        reason: str = "",
        executor_id: str | None = None,
        result: bytes | None = None,
        module_version: str | None = None,
    ) -> JobRecord:
        """Move attempt ``attempt`` of the job by ``trigger``. Raises :class:`UnknownJob`, :class:`StaleAttempt`
        (another attempt: a late callback, to be answered and ignored) or :class:`IllegalTransition` (the table
        refuses it; ``plan`` and ``retry`` have their own methods). Nothing is written then."""
        if trigger in _NOT_BY_TRANSITION:
            raise IllegalTransition("(any)", f"{trigger.value} (use JobRepository.{trigger.value}())", guid=guid)
        at = self._clock()

        def write(connection: sqlite3.Connection) -> JobRecord:
            current = _current(connection, guid, job, attempt)
            new = apply_job(current.state, trigger, reason=reason, job=current.key)
            _move(connection, current, new, trigger, at=at, actor=actor, reason=reason, attempt=current.attempt,
                  executor_id=executor_id, result=result, module_version=module_version)  # fmt: skip
            return _one(connection, guid, job)

        moved: JobRecord = await self._db.call(write)
        return moved

    async def mark_applied(self, guid: str, job: str, *, attempt: int, actor: str, what: str) -> JobRecord:
        """Record that the daemon acted on the done job's result (``what``: one line for its log)."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> JobRecord:
            current = _current(connection, guid, job, attempt)
            if current.state is not JobState.DONE:
                raise IllegalTransition(current.state.value, "apply (only a done job's result)", guid=guid)
            connection.execute(
                "UPDATE jobs SET applied = 1, updated_at = ? WHERE guid = ? AND job = ?", (at, guid, job)
            )
            insert_event(connection, entity_kind="job", entity_id=current.key, kind="note", from_state="done",
                         to_state="done", trigger="applied", reason=what, actor=actor, at=at)  # fmt: skip
            return _one(connection, guid, job)

        moved: JobRecord = await self._db.call(write)
        return moved

    async def counts(self) -> dict[str, int]:
        """How many jobs are in each state, over all assets (for /metrics and status)."""
        result: dict[str, int] = await self._db.call(job_counts)
        return result

    async def retry(
        self, guid: str, job: str, *, attempt: int, max_attempts: int, actor: str, reason: str
    ) -> JobRecord:
        """Start the next attempt of a ``failed`` or ``lost`` job. Raises :class:`IllegalTransition` in any other
        state (an attempt that may still run is never followed by another), :class:`RetriesExhausted` when it has
        had ``max_attempts`` (the caller fails the asset with the job's reason), :class:`StaleAttempt`."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> JobRecord:
            current = _current(connection, guid, job, attempt)
            new = apply_job(current.state, JobTrigger.RETRY, reason=reason, job=current.key)
            if current.attempt >= max_attempts:
                raise RetriesExhausted(guid=guid, job=job, attempts=current.attempt)
            _move(connection, current, new, JobTrigger.RETRY, at=at, actor=actor, reason=reason,
                  attempt=current.attempt + 1, executor_id="", result=None, module_version="")  # fmt: skip
            return _one(connection, guid, job)

        moved: JobRecord = await self._db.call(write)
        return moved


def job_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """How many jobs are in each state, over all assets."""
    rows = connection.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def select_jobs(connection: sqlite3.Connection, guid: str) -> list[JobRecord]:
    rows = connection.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE guid = ? ORDER BY grp, job", (guid,))
    return [_from_row(row) for row in rows]


def _one(connection: sqlite3.Connection, guid: str, job: str) -> JobRecord:
    row = connection.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE guid = ? AND job = ?", (guid, job)).fetchone()
    if row is None:
        raise UnknownJob(guid=guid, job=job)
    return _from_row(row)


def _current(connection: sqlite3.Connection, guid: str, job: str, attempt: int) -> JobRecord:
    current = _one(connection, guid, job)
    if current.attempt != attempt:
        raise StaleAttempt(guid=guid, job=job, attempt=attempt, current=current.attempt)
    return current


def _move(
    connection: sqlite3.Connection,
    current: JobRecord,
    new: JobState,
    trigger: JobTrigger,
    *,
    at: float,
    actor: str,
    reason: str,
    attempt: int,
    executor_id: str | None,
    result: bytes | None,
    module_version: str | None,
) -> None:
    connection.execute(
        "UPDATE jobs SET state = ?, attempt = ?, reason = ?, state_since = ?, updated_at = ?, "
        "applied = CASE WHEN ? THEN 0 ELSE applied END, executor_id = COALESCE(?, executor_id), "
        "result = CASE WHEN ? THEN ? ELSE result END, module_version = COALESCE(?, module_version) "
        "WHERE guid = ? AND job = ?",
        (new.value, attempt, reason, at, at, trigger is JobTrigger.RETRY, executor_id,
         trigger is JobTrigger.RETRY or result is not None, result, module_version, current.guid, current.job),
    )  # fmt: skip
    insert_event(connection, entity_kind="job", entity_id=current.key, kind="transition",
                 from_state=current.state.value, to_state=new.value, trigger=trigger.value, reason=reason,
                 actor=actor, at=at)  # fmt: skip
