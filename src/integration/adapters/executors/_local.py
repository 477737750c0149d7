"""The local executor: jobs as subprocesses of the daemon, a bounded number at once, each in its own process
group, stopped at its time limit and on cancel, and never outliving the daemon unnoticed.

Every job has a folder ``<root>/<key>/`` holding its ``stdout``, ``stderr``, ``pid`` (PID and start time) and,
once it ended, ``exit`` (its exit code). The folder is the key's record, so a key runs at most once, ever:
submitting it again reports what is there (the daemon retries under a new attempt's key).

If the daemon is SIGKILLed, each job is killed with it (``PR_SET_PDEATHSIG``); a restarted executor's
:meth:`LocalExecutor.recover` finds any process group left from a job without an ``exit`` (a grandchild such as
tesseract survives its parent's death signal) by PID and start time, kills it, and writes its ``exit``: those
jobs are reported ``exited`` with a note, and the watchdog settles them as lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import trio

from integration.errors import ConfigError, NodeResourceError

from ._interface import JobSeen, JobSpec, Seen

__all__ = ["LocalExecutor"]

_PR_SET_PDEATHSIG = 1
_KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: be killed when the daemon dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class _Job:
    spec: JobSpec
    folder: Path
    seen: Seen = "queued"
    pid: int | None = None
    exit_code: int | None = None
    note: str = ""
    cancelled: bool = False
    process_ended: trio.Event = field(default_factory=trio.Event)  # its process exited (it may still be tidying)
    ended: trio.Event = field(default_factory=trio.Event)  # the job is over and its ``exit`` written

    def view(self) -> JobSeen:
        return JobSeen(key=self.spec.key, seen=self.seen, executor_id=str(self.pid or ""), exit_code=self.exit_code,
                       note=self.note)  # fmt: skip


class LocalExecutor:
    """Run :class:`JobSpec` commands here. Start :meth:`run` in a nursery first; it owns the jobs' tasks."""

    def __init__(self, root: Path, *, parallel_jobs: int, kill_grace_s: float = 5.0) -> None:
        self._root = root
        self._slots = trio.Semaphore(parallel_jobs)
        self._kill_grace_s = kill_grace_s
        self._jobs: dict[str, _Job] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; on the way out every running job's process group is stopped."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"executor root {self._root}: {exc}") from exc
        self.recover()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def recover(self) -> list[str]:
        """Kill what a previous daemon's jobs left running and record it; returns the keys concerned."""
        recovered = []
        for folder in sorted(self._root.iterdir()) if self._root.is_dir() else []:
            pid_file, exit_file = folder / "pid", folder / "exit"
            if not pid_file.exists() or exit_file.exists() or folder.name in self._jobs:
                continue
            with contextlib.suppress(OSError, ValueError, KeyError):
                recorded = json.loads(pid_file.read_text())
                pid = int(recorded["pid"])
                # The leader itself (same PID, same start time), or no process with that PID at all: then a group
                # with that id can only be the job's own children, left when the leader died with the daemon. A
                # PID reused by another process is left alone.
                if _start_ticks(pid) == recorded["start"] or not Path(f"/proc/{pid}").exists():
                    _signal_group(pid, signal.SIGKILL)
            _write_exit(folder, None, "the daemon stopped while it ran; its processes were killed on restart")
            recovered.append(folder.name)
        return recovered

    async def submit(self, spec: JobSpec) -> JobSeen:
        if not spec.key or set(spec.key) - _KEY_CHARACTERS or spec.key.startswith("."):
            raise ConfigError(f"job key {spec.key!r}: only letters, digits, '-', '_' and '.' may name a job folder")
        if spec.key in self._jobs:
            return self._jobs[spec.key].view()
        folder = self._root / spec.key
        if folder.exists():  # a key runs once, ever: report what the earlier run left
            return self._from_disk(spec.key)
        if self._nursery is None:
            raise RuntimeError("LocalExecutor.run() is not running")
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise NodeResourceError(f"cannot make the job folder {folder}: {exc}") from exc
        job = _Job(spec=spec, folder=folder)
        self._jobs[spec.key] = job
        self._nursery.start_soon(self._run_job, job)
        return job.view()

    async def status(self, keys: list[str]) -> dict[str, JobSeen]:
        return {key: self._jobs[key].view() if key in self._jobs else self._from_disk(key) for key in keys}

    async def cancel(self, key: str) -> JobSeen:
        job = self._jobs.get(key)
        if job is None or job.seen == "exited":
            return job.view() if job else self._from_disk(key)
        job.cancelled = True
        if job.seen == "running":
            await self._stop(job, "cancelled")
        return job.view()

    async def stderr_tail(self, key: str, *, lines: int = 40) -> str:
        path = self._root / key / "stderr"
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 64 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait(self, key: str) -> JobSeen:
        """Until the job of ``key`` ended (for tests and the demo; the daemon polls :meth:`status`)."""
        job = self._jobs[key]
        await job.ended.wait()
        return job.view()

    async def _run_job(self, job: _Job) -> None:
        try:
            async with self._slots:
                if job.cancelled:
                    job.seen, job.note = "exited", "cancelled before it started"
                    return
                await self._start_and_wait(job)
        finally:
            if job.seen != "exited":
                job.seen = "exited"
            _write_exit(job.folder, job.exit_code, job.note)
            job.ended.set()

    async def _start_and_wait(self, job: _Job) -> None:
        spec = job.spec
        with (job.folder / "stdout").open("wb") as out, (job.folder / "stderr").open("wb") as err:
            try:
                process = await trio.lowlevel.open_process(
                    spec.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(job.folder),
                    env={**os.environ, **spec.env}, start_new_session=True, preexec_fn=_die_with_parent,
                )  # fmt: skip
            except OSError as exc:
                job.exit_code, job.note = 127, f"could not start {spec.argv[0]!r}: {exc}"
                return
            job.pid, job.seen = process.pid, "running"
            (job.folder / "pid").write_text(json.dumps({"pid": process.pid, "start": _start_ticks(process.pid)}))
            try:
                async with trio.open_nursery() as watch:
                    watch.start_soon(self._time_limit, job)
                    await process.wait()
                    job.process_ended.set()
                    watch.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:  # the executor itself is being stopped
                        async with trio.open_nursery() as stopping:
                            stopping.start_soon(self._stop, job, "stopped: the daemon is shutting down")
                            await process.wait()
                            job.process_ended.set()
                    job.exit_code = process.returncode

    async def _time_limit(self, job: _Job) -> None:
        await trio.sleep(job.spec.time_limit_s)
        await self._stop(job, f"stopped at its time limit ({job.spec.time_limit_s:g} s)")

    async def _stop(self, job: _Job, note: str) -> None:
        """SIGTERM the job's process group; SIGKILL it if the job has not ended after the grace period."""
        job.note = note
        if job.pid is None:
            return
        _signal_group(job.pid, signal.SIGTERM)
        with trio.move_on_after(self._kill_grace_s):
            await job.process_ended.wait()
            return
        _signal_group(job.pid, signal.SIGKILL)

    def _from_disk(self, key: str) -> JobSeen:
        folder = self._root / key
        exit_file = folder / "exit"
        if exit_file.exists():
            with contextlib.suppress(OSError, ValueError):
                recorded = json.loads(exit_file.read_text())
                return JobSeen(key=key, seen="exited", exit_code=recorded.get("code"), note=recorded.get("note", ""))
        return JobSeen(key=key, seen="unknown", note="no record of this job here" if not folder.exists() else "")


def _write_exit(folder: Path, code: int | None, note: str) -> None:
    with contextlib.suppress(OSError):
        partial = folder / ".exit.partial"
        partial.write_text(json.dumps({"code": code, "note": note}))
        partial.replace(folder / "exit")


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the PID, an
    identity that a recycled PID does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
