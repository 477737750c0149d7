"""The local executor with real subprocesses: results, bounded concurrency, time limits, cancel of a whole
process group, one run per key, and no job outliving a SIGKILLed daemon unnoticed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from integration.adapters.executors import JobSpec, LocalExecutor
from integration.errors import ConfigError

PY = sys.executable


@contextlib.asynccontextmanager
async def serving(root: Path, *, parallel_jobs: int, kill_grace_s: float = 5.0) -> AsyncIterator[LocalExecutor]:
    """A local executor serving in a nursery of its own; stopped (as the daemon stops it) on leaving."""
    executor = LocalExecutor(root, parallel_jobs=parallel_jobs, kill_grace_s=kill_grace_s)
    async with trio.open_nursery() as nursery:
        await nursery.start(executor.run)
        yield executor
        nursery.cancel_scope.cancel()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def _wait_for(path: Path) -> str:
    with trio.fail_after(10):
        while not path.exists() or not path.read_text().strip():
            await trio.sleep(0.02)
    return path.read_text().strip()


async def test_a_job_runs_and_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=2) as executor:
        script = "import sys; print('result'); sys.stderr.write('line 1\\nwhy it failed\\n'); sys.exit(3)"
        seen = await executor.submit(JobSpec(key="g-barcode-1", argv=[PY, "-c", script]))
        assert seen.seen in ("queued", "running")
        ended = await executor.wait("g-barcode-1")
        assert (ended.seen, ended.exit_code) == ("exited", 3)
        assert (await executor.stderr_tail("g-barcode-1")).endswith("why it failed")
        assert (tmp_path / "jobs" / "g-barcode-1" / "stdout").read_text() == "result\n"
        assert (await executor.status(["g-barcode-1", "never"]))["never"].seen == "unknown"


async def test_no_more_jobs_run_at_once_than_allowed(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        wait_for_gate = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
        await executor.submit(JobSpec(key="a", argv=[PY, "-c", wait_for_gate]))
        with trio.fail_after(10):
            while (await executor.status(["a"]))["a"].seen != "running":
                await trio.sleep(0.02)
        await executor.submit(JobSpec(key="b", argv=[PY, "-c", "pass"]))
        await trio.sleep(0.2)  # time enough for b to start, if the bound did not hold
        assert (await executor.status(["b"]))["b"].seen == "queued"
        gate.write_text("go")
        assert (await executor.wait("b")).exit_code == 0


async def test_a_job_past_its_time_limit_is_stopped_with_a_note(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1, kill_grace_s=0.5) as executor:
        await executor.submit(JobSpec(key="slow", argv=["sleep", "60"], time_limit_s=0.3))
        ended = await executor.wait("slow")
        assert ended.exit_code == -signal.SIGTERM
        assert "time limit" in ended.note


async def test_a_job_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    async with serving(tmp_path / "jobs", parallel_jobs=1, kill_grace_s=0.3) as executor:
        await executor.submit(JobSpec(key="stubborn", argv=[PY, "-c", stubborn], time_limit_s=60))
        await _wait_for(tmp_path / "jobs" / "stubborn" / "stdout")
        await executor.cancel("stubborn")
        ended = await executor.wait("stubborn")
        assert ended.exit_code == -signal.SIGKILL
        assert ended.note == "cancelled"


async def test_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1, kill_grace_s=1) as executor:
        await executor.submit(JobSpec(key="tree", argv=["sh", "-c", "sleep 60 & echo $! > child; wait"]))
        child = int(await _wait_for(tmp_path / "jobs" / "tree" / "child"))
        assert _alive(child)
        await executor.cancel("tree")
        await executor.wait("tree")
        with trio.fail_after(5):
            while _alive(child):
                await trio.sleep(0.02)


async def test_a_key_runs_once_ever(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    spec = JobSpec(key="g-ocr-1", argv=["sh", "-c", f"echo run >> {counter}"])
    async with serving(tmp_path / "jobs", parallel_jobs=2) as executor:
        await executor.submit(spec)
        await executor.submit(spec)  # a duplicate while it is queued or running
        await executor.wait("g-ocr-1")
        again = await executor.submit(spec)  # and after it ended
        assert again.seen == "exited"
    async with serving(tmp_path / "jobs", parallel_jobs=2) as restarted:  # a new daemon: the folder is the record
        assert (await restarted.submit(spec)).seen == "exited"
    assert counter.read_text() == "run\n"


@pytest.mark.parametrize("key", ["", "../escape", ".hidden", "a/b", "with space"])
async def test_a_key_that_cannot_name_a_folder_is_refused(tmp_path: Path, key: str) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        with pytest.raises(ValueError, match="job key"):
            await executor.submit(JobSpec(key=key, argv=["true"]))
    assert not (tmp_path / "escape").exists()


async def test_a_command_that_cannot_start_is_an_exit_127_with_its_reason(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        await executor.submit(JobSpec(key="missing", argv=["/nonexistent/runner"]))
        ended = await executor.wait("missing")
        assert ended.exit_code == 127
        assert "could not start" in ended.note


async def test_stopping_the_executor_stops_its_jobs_and_records_why(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1, kill_grace_s=1) as executor:
        await executor.submit(JobSpec(key="long", argv=["sh", "-c", "echo $$ > me; sleep 60"]))
        pid = int(await _wait_for(tmp_path / "jobs" / "long" / "me"))
    assert not _alive(pid)
    recorded = json.loads((tmp_path / "jobs" / "long" / "exit").read_text())
    assert "shutting down" in recorded["note"]


_DAEMON = """
import sys, trio
from pathlib import Path
from integration.adapters.executors import JobSpec, LocalExecutor

async def main():
    executor = LocalExecutor(Path(sys.argv[1]), parallel_jobs=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(executor.run)
        script = "sleep 60 & echo $! > child; echo $$ > me; wait"
        await executor.submit(JobSpec(key="orphan", argv=["sh", "-c", script]))
        await trio.sleep_forever()

trio.run(main)
"""


def test_jobs_do_not_outlive_a_sigkilled_daemon_unnoticed(tmp_path: Path) -> None:
    """The daemon is SIGKILLed while a job runs: the job's own process dies with it (PR_SET_PDEATHSIG); its
    grandchild, which a death signal does not reach, is found and killed by the next executor's recovery, and
    the job is reported ended with the reason."""
    root = tmp_path / "jobs"
    daemon = subprocess.Popen([sys.executable, "-c", _DAEMON, str(root)])
    try:
        deadline = time.monotonic() + 20
        while not ((root / "orphan" / "child").exists() and (root / "orphan" / "me").exists()):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        time.sleep(0.1)
        child = int((root / "orphan" / "child").read_text())
        runner = int((root / "orphan" / "me").read_text())
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(runner):
            assert time.monotonic() < deadline, "the job's process outlived the daemon"
            time.sleep(0.05)
        assert _alive(child)  # the grandchild is still there ...
        recovered = LocalExecutor(root, parallel_jobs=1).recover()
        assert recovered == ["orphan"]
        deadline = time.monotonic() + 5
        while _alive(child):  # ... until recovery kills the job's process group
            assert time.monotonic() < deadline, "recovery left the job's grandchild running"
            time.sleep(0.05)
        recorded = json.loads((root / "orphan" / "exit").read_text())
        assert "daemon stopped" in recorded["note"]
    finally:
        if daemon.poll() is None:
            daemon.kill()
        for name in ("child", "me"):
            path = root / "orphan" / name
            if path.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(path.read_text()), signal.SIGKILL)


async def test_a_job_outlives_the_thread_that_trio_would_have_forked_it_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends: a job must not die when an idle worker thread
    does (trio's end after IDLE_TIMEOUT; shortened here so a 1 s job would be killed by that mistake)."""
    import trio._core._thread_cache as thread_cache

    monkeypatch.setattr(thread_cache, "IDLE_TIMEOUT", 0.1)
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        await executor.submit(JobSpec(key="steady", argv=["sleep", "1"]))
        ended = await executor.wait("steady")
        assert (ended.exit_code, ended.note) == (0, "")


async def test_nothing_of_a_job_runs_on_after_its_leader_exits(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        await executor.submit(JobSpec(key="leaves", argv=["sh", "-c", "sleep 60 & echo $! > child"]))
        assert (await executor.wait("leaves")).exit_code == 0
        child = int((tmp_path / "jobs" / "leaves" / "child").read_text())
        with trio.fail_after(5):
            while _alive(child):
                await trio.sleep(0.02)


async def test_a_job_cancelled_while_queued_leaves_its_key_unused(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        blocker = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
        await executor.submit(JobSpec(key="first", argv=[PY, "-c", blocker]))
        await executor.submit(JobSpec(key="second", argv=["true"]))
        await executor.cancel("second")
        gate.write_text("go")
        ended = await executor.wait("second")
        assert ended.exit_code is None
        assert ended.note == "cancelled before it started"
        assert not (tmp_path / "jobs" / "second").exists()


async def test_a_command_that_cannot_be_started_fails_only_its_job(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1) as executor:
        await executor.submit(JobSpec(key="nul", argv=["echo", "a\x00b"]))
        await executor.submit(JobSpec(key="badenv", argv=["true"], env={"A=B": "1"}))
        for key in ("nul", "badenv"):
            ended = await executor.wait(key)
            assert ended.exit_code == 127
            assert "could not start" in ended.note
        await executor.submit(JobSpec(key="after", argv=["true"]))
        assert (await executor.wait("after")).exit_code == 0  # the executor still serves
        with pytest.raises(ValueError, match="empty command"):
            await executor.submit(JobSpec(key="empty", argv=[]))


async def test_one_executor_per_root(tmp_path: Path) -> None:
    async with serving(tmp_path / "jobs", parallel_jobs=1):
        with pytest.raises(ConfigError, match="another executor"):
            LocalExecutor(tmp_path / "jobs", parallel_jobs=1).recover()
    LocalExecutor(tmp_path / "jobs", parallel_jobs=1).recover()  # released when the first stopped


async def test_forget_drops_ended_jobs_from_memory_and_disk_and_leaves_running_ones(tmp_path: Path) -> None:
    """A finalized asset's jobs are forgotten: their folders and their place in memory (a daemon that runs for
    months must not keep every job it ran). A job still running is dropped once it ends; forgetting again is
    harmless."""
    gate = tmp_path / "gate"
    async with serving(tmp_path / "jobs", parallel_jobs=2) as executor:
        await executor.submit(JobSpec(key="g-barcode-1", argv=[PY, "-c", "pass"]))
        await executor.wait("g-barcode-1")
        wait_for_gate = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
        await executor.submit(JobSpec(key="g-ocr-1", argv=[PY, "-c", wait_for_gate]))
        assert await executor.forget(["g-barcode-1", "g-ocr-1", "g-never-1"]) == 1
        assert not (tmp_path / "jobs" / "g-barcode-1").exists()
        assert (await executor.status(["g-barcode-1"]))["g-barcode-1"].seen == "unknown"
        assert (await executor.status(["g-ocr-1"]))["g-ocr-1"].seen in ("queued", "running")
        assert (tmp_path / "jobs" / "g-ocr-1").exists()
        gate.write_text("go")
        with trio.fail_after(10):  # forgotten while running: dropped once it ended
            while (tmp_path / "jobs" / "g-ocr-1").exists():
                await trio.sleep(0.02)
        assert (await executor.status(["g-ocr-1"]))["g-ocr-1"].seen == "unknown"
        assert await executor.forget(["g-ocr-1"]) == 0
        assert list((tmp_path / "jobs").iterdir()) == [tmp_path / "jobs" / ".lock"]
        with pytest.raises(ValueError, match="job key"):
            await executor.forget(["../escape"])
