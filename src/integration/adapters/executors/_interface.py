"""What the daemon asks of any executor (local subprocesses now; Slurm over SSH, Torque and the polling agent
next): submit a job under its idempotency key, the status of many jobs in one call, cancel, the stderr tail.

An executor never decides a job's state: it reports what it sees (``queued``, ``running``, ``exited`` with an
exit code, or ``unknown``), and the daemon's job machine and watchdog decide. The runner on the node reports
started/finished/failed through the callback API; an executor's ``exited`` without such a report is what the
watchdog settles.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

__all__ = ["Executor", "JobSeen", "JobSpec", "Seen"]

Seen = Literal["queued", "running", "exited", "unknown"]


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One attempt of one job, as handed to an executor."""

    key: str  # the idempotency key: asset GUID + job + attempt; one run per key, ever
    argv: list[str]  # the command, e.g. ["integration", "hpc", "run", "barcode", "--job-key", key, ...]
    cpus: int = 1
    memory_mb: int = 2048
    time_limit_s: float = 1800.0  # the executor stops the job after this
    env: dict[str, str] = msgspec.field(default_factory=dict)  # added to the executor's environment


class JobSeen(msgspec.Struct, frozen=True, kw_only=True):
    """What an executor sees of a job now."""

    key: str
    seen: Seen
    executor_id: str = ""  # the executor's own name for it (a PID, a Slurm job id)
    exit_code: int | None = None  # for ``exited``: negative = killed by that signal
    note: str = ""  # e.g. "stopped at its time limit (600 s)"
    interrupted: bool = False  # stopped because the executor (the daemon) stopped: not the job's doing


class Executor(Protocol):
    """The executor interface; every method may raise an :class:`~integration.errors.IntegrationError`."""

    async def submit(self, spec: JobSpec) -> JobSeen:
        """Start (or queue) ``spec``. Submitting a key that is queued or running returns what is there: never
        two runs of one key."""

    async def status(self, keys: list[str]) -> dict[str, JobSeen]:
        """What the executor sees of each key, in one call (``unknown`` for keys it never had or forgot)."""

    async def cancel(self, key: str) -> JobSeen:
        """Stop the job of ``key`` (its whole process group / its batch job); a no-op when it is not running."""

    async def stderr_tail(self, key: str, *, lines: int = 40) -> str:
        """The last ``lines`` of the job's stderr, for a human reading why it failed ("" when there is none)."""

    async def forget(self, keys: list[str]) -> int:
        """Remove what is kept of the ended jobs ``keys`` (their logs and exit records): their asset is finalized
        and nobody asks about them again. A key still queued or running is removed once it ends. Returns how many
        were removed now."""
