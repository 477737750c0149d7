"""The local executor: jobs as subprocesses of the daemon, a bounded number at once, each in its own process
group, stopped at its time limit and on cancel, and never outliving the daemon unnoticed.

Every job has a folder ``<root>/<key>/`` holding its ``stdout``, ``stderr``, ``pid`` (PID and start time) and,
once it ended, ``exit`` (its exit code and a note). The folder is the key's record, so a key runs at most once,
ever: submitting it again reports what is there (the daemon retries under a new attempt's key). A job that
never started leaves no folder, so its key is not used up. One executor per root (``.lock``).

Processes are started from the trio thread itself (a fork + exec takes milliseconds): the death signal
``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, and trio's worker threads end after a
few idle seconds. Each job is waited for through a pidfd; when its leader exits, the rest of its process group
is killed before the leader is reaped, so nothing of a job runs on outside its slot, and no signal is ever sent
to a reaped (possibly reused) PID.

If the daemon is SIGKILLed, each job's leader dies with it; :meth:`LocalExecutor.recover` (run by the next
executor on the same root) kills what is left of any job without an ``exit`` — by PID and start time, never a
reused PID — and writes its ``exit`` with the reason: those jobs are reported ``exited`` and the watchdog
settles them as lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import structlog
import trio

from integration.adapters._atomic import write_atomically
from integration.errors import ConfigError, NodeResourceError

from ._interface import JobSeen, JobSpec, Seen

log = structlog.get_logger()

__all__ = ["LocalExecutor", "check_key"]

_PR_SET_PDEATHSIG = 1
_KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
#: Looked up once in the parent: nothing may be loaded between fork and exec in a multi-threaded process.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_NODE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ESTALE, errno.EMFILE, errno.ENFILE})


def check_key(key: str) -> None:
    """A job key names a folder: letters, digits, ``-``, ``_``, ``.``, not hidden. Raises ValueError."""
    if not key or set(key) - _KEY_CHARACTERS or key.startswith(".") or len(key) > 200:
        raise ValueError(f"job key {key!r}: only letters, digits, '-', '_' and '.' (at most 200) may name a job")


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: be killed when the daemon's thread that forked it ends — and if it already did, go."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


@dataclass
class _Job:
    spec: JobSpec
    folder: Path
    seen: Seen = "queued"
    pid: int | None = None
    exit_code: int | None = None
    note: str = ""
    interrupted: bool = False  # stopped by the executor's own shutdown, not by anything the job did
    reaped: bool = False  # its leader was reaped: its PID may belong to someone else now (never signal it)
    stop: trio.Event = field(default_factory=trio.Event)  # cancel or shutdown asked the job's task to stop it
    ended: trio.Event = field(default_factory=trio.Event)  # the job is over and its ``exit`` written

    def view(self) -> JobSeen:
        return JobSeen(key=self.spec.key, seen=self.seen, executor_id=str(self.pid or ""), exit_code=self.exit_code,
                       note=self.note, interrupted=self.interrupted)  # fmt: skip


class LocalExecutor:
    """Run :class:`JobSpec` commands here. Start :meth:`run` in a nursery first; it owns the jobs' tasks."""

    def __init__(
        self,
        root: Path,
        *,
        parallel_jobs: int,
        kill_grace_s: float = 5.0,
        on_exit: Callable[[str], None] | None = None,
    ) -> None:
        self._root = root
        self._on_exit = on_exit  # told each key whose job ended (the daemon wakes the asset: no polling delay)
        self._slots = trio.Semaphore(parallel_jobs)
        self._kill_grace_s = kill_grace_s
        self._jobs: dict[str, _Job] = {}
        self._forget_at_exit: set[str] = set()  # forgotten while still running: dropped when they end
        self._nursery: trio.Nursery | None = None
        self._lock: IO[bytes] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; on the way out every job is stopped (queued ones leave no trace)."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            self._take_lock()  # held while serving
            self.recover()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._unlock()

    def recover(self) -> list[str]:
        """Take the root (one executor per root); kill what a previous daemon's jobs left running and record
        it; remove folders of jobs that never started. Returns the keys that were recovered."""
        held = self._lock is not None
        self._take_lock()
        try:
            return self._recover()
        finally:
            if not held:
                self._unlock()

    def _recover(self) -> list[str]:
        recovered = []
        for folder in sorted(p for p in self._root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (folder / "exit").exists() or folder.name in self._jobs:
                continue
            if not (folder / "pid").exists():  # submitted, never started: the key is not used up
                shutil.rmtree(folder, ignore_errors=True)
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                recorded = json.loads((folder / "pid").read_text())
                pid = int(recorded["pid"])
                # The leader itself (same PID, same start time), or no process with that PID at all: then a group
                # with that id can only be the job's own children, left when the leader died with the daemon. A
                # PID reused by another process is left alone.
                same = recorded["start"] is not None and _start_ticks(pid) == recorded["start"]
                if same or not Path(f"/proc/{pid}").exists():
                    _signal_group(pid, signal.SIGKILL)
            _write_exit(
                folder, None, "the daemon stopped while it ran; its processes were killed on restart", interrupted=True
            )
            recovered.append(folder.name)
        return recovered

    async def submit(self, spec: JobSpec) -> JobSeen:
        check_key(spec.key)
        if not spec.argv:
            raise ValueError(f"job {spec.key}: an empty command")
        if spec.key in self._jobs:
            return self._jobs[spec.key].view()
        folder = self._root / spec.key
        if folder.exists():  # a key runs once, ever: report what the earlier run left
            return self._from_disk(spec.key)
        if self._nursery is None:
            raise RuntimeError("LocalExecutor.run() is not running")
        try:
            folder.mkdir()
        except OSError as exc:
            raise _folder_failure(folder, exc) from exc
        job = _Job(spec=spec, folder=folder)
        self._jobs[spec.key] = job
        self._nursery.start_soon(self._run_job, job)
        return job.view()

    async def status(self, keys: list[str]) -> dict[str, JobSeen]:
        for key in keys:
            check_key(key)
        return {key: self._jobs[key].view() if key in self._jobs else self._from_disk(key) for key in keys}

    async def cancel(self, key: str) -> JobSeen:
        """Ask the job's own task to stop it (SIGTERM, SIGKILL after the grace); returns at once."""
        check_key(key)
        job = self._jobs.get(key)
        if job is None:
            return self._from_disk(key)
        if job.seen != "exited" and not job.stop.is_set():
            job.note = "cancelled"
            job.stop.set()
        return job.view()

    async def stderr_tail(self, key: str, *, lines: int = 40) -> str:
        check_key(key)
        path = self._root / key / "stderr"
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 64 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def forget(self, keys: list[str]) -> int:
        """Drop ended jobs from memory and their folders from disk (a daemon that runs for months must not keep
        every job it ever ran); a job still queued or running is dropped when it ends (its asset's callback can
        come before its process exits)."""
        for key in keys:
            check_key(key)
        ended = [key for key in keys if key not in self._jobs or self._jobs[key].ended.is_set()]
        self._forget_at_exit.update(set(keys) - set(ended))
        for key in ended:
            self._jobs.pop(key, None)
        folders = [self._root / key for key in ended]

        def remove() -> int:
            present = [folder for folder in folders if folder.is_dir()]
            for folder in present:
                shutil.rmtree(folder)
            return len(present)

        try:
            return await trio.to_thread.run_sync(remove)
        except OSError as exc:
            raise NodeResourceError(f"cannot remove the job folders under {self._root}: {exc}") from exc

    async def wait(self, key: str) -> JobSeen:
        """Until the job of ``key`` ended (for tests and the demo; the daemon polls :meth:`status`)."""
        job = self._jobs[key]
        await job.ended.wait()
        return job.view()

    async def _run_job(self, job: _Job) -> None:
        started = False
        try:
            async with self._slots:
                if job.stop.is_set():
                    return  # cancelled while queued
                started = True
                await self._start_and_wait(job)
        finally:
            job.seen = "exited"
            if started:
                _write_exit(job.folder, job.exit_code, job.note, interrupted=job.interrupted)
            else:  # never ran: leave no record, so the key is not used up
                job.note = "cancelled before it started" if job.stop.is_set() else "not started: the executor stopped"
                shutil.rmtree(job.folder, ignore_errors=True)
            job.ended.set()
            if started and self._on_exit is not None:
                try:
                    self._on_exit(job.spec.key)
                except Exception:  # a listener's bug must not break the executor; the watchdog still looks
                    log.exception("executor_on_exit_failed", job_key=job.spec.key)
            if job.spec.key in self._forget_at_exit:
                self._forget_at_exit.discard(job.spec.key)
                self._jobs.pop(job.spec.key, None)
                shutil.rmtree(job.folder, ignore_errors=True)  # a few small log files

    async def _start_and_wait(self, job: _Job) -> None:
        spec = job.spec
        try:
            process = self._spawn(job)
        except Exception as exc:  # a command or environment that cannot start is this job's failure only
            job.exit_code, job.note = 127, f"could not start {spec.argv[:1]}: {exc}"
            return
        job.pid, job.seen = process.pid, "running"
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError as exc:  # cannot watch it (out of file descriptors): do not let it run unsupervised
            _signal_group(process.pid, signal.SIGKILL)
            job.exit_code, job.note, job.reaped = process.wait(), f"stopped: it could not be watched ({exc})", True
            return
        try:
            with contextlib.suppress(OSError):
                pid = {"pid": process.pid, "start": _start_ticks(process.pid)}
                write_atomically(job.folder / "pid", json.dumps(pid).encode())
            async with trio.open_nursery() as watch:
                watch.start_soon(self._watch, job)
                try:
                    await trio.lowlevel.wait_readable(pidfd)  # the leader exited (a zombie until reaped)
                except trio.Cancelled:  # the executor itself is being stopped: stop the job before going
                    with trio.CancelScope(shield=True):
                        job.note = job.note or "stopped: the daemon is shutting down"
                        job.interrupted = not job.stop.is_set()
                        _signal_group(process.pid, signal.SIGTERM)
                        with trio.move_on_after(self._kill_grace_s):
                            await trio.lowlevel.wait_readable(pidfd)
                    raise
                watch.cancel_scope.cancel()  # no signal from the watch after this point
        finally:
            # Nothing of the job runs on without its leader: kill the group while the leader's PID (alive or a
            # zombie) still names it; then reap it, and never signal that PID again.
            _signal_group(process.pid, signal.SIGKILL)
            job.exit_code = process.wait()
            job.reaped = True
            os.close(pidfd)

    def _spawn(self, job: _Job) -> subprocess.Popen[bytes]:
        spec = job.spec
        parent = os.getpid()
        with (job.folder / "stdout").open("wb") as out, (job.folder / "stderr").open("wb") as err:
            # In the trio thread on purpose (see the module docstring): fork + exec take milliseconds.
            return subprocess.Popen(
                spec.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(job.folder),
                env={**os.environ, **spec.env}, start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, parent),
            )  # fmt: skip

    async def _watch(self, job: _Job) -> None:
        """Stop the job at its time limit or on cancel: SIGTERM its group, SIGKILL after the grace period.
        Cancelled (by the job's task) the moment the leader exits, so it never signals a reaped PID."""
        assert job.pid is not None
        with trio.move_on_after(job.spec.time_limit_s) as limit:
            await job.stop.wait()
        if limit.cancelled_caught:
            job.note = f"stopped at its time limit ({job.spec.time_limit_s:g} s)"
        _signal_group(job.pid, signal.SIGTERM)
        await trio.sleep(self._kill_grace_s)
        _signal_group(job.pid, signal.SIGKILL)

    def _from_disk(self, key: str) -> JobSeen:
        folder = self._root / key
        exit_file = folder / "exit"
        if exit_file.exists():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                recorded = json.loads(exit_file.read_text())
                return JobSeen(key=key, seen="exited", exit_code=recorded.get("code"), note=recorded.get("note", ""),
                               interrupted=bool(recorded.get("interrupted", False)))  # fmt: skip
        return JobSeen(key=key, seen="unknown", note="no record of this job here" if not folder.exists() else "")

    def _take_lock(self) -> None:
        if self._lock is not None:
            return
        handle = (self._root / ".lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(f"another executor uses {self._root} (its .lock is held)") from None
        self._lock = handle

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _folder_failure(folder: Path, exc: OSError) -> NodeResourceError | ConfigError:
    if exc.errno in _NODE_ERRNOS:
        return NodeResourceError(f"cannot make the job folder {folder}: {exc}")
    return ConfigError(f"cannot make the job folder {folder}: {exc}")


def _write_exit(folder: Path, code: int | None, note: str, *, interrupted: bool = False) -> None:
    with contextlib.suppress(OSError):
        write_atomically(folder / "exit", json.dumps({"code": code, "note": note, "interrupted": interrupted}).encode())


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the PID, an
    identity that a recycled PID does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
