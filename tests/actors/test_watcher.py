"""The N-Drive watcher under trio's autojump clock: settle window, and failures kept to their scope.

A bad asset becomes that asset's rejection; a failing or hung mount pauses the intake lane; a full local disk
pauses the storage lane; the watcher itself never crashes or crash-loops.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actor_support import Harness, harness
from daemon_support import write_session
from integration.actors import (
    WatcherStatistics,
    _session_import,
    _watcher,
    ndrive_health_probe,
    run_lane_prober,
    run_ndrive_watcher,
)
from integration.adapters.files import CopyMismatch
from integration.errors import NdriveUnavailable, StorageUnavailable, TransientError

WS = "test-workstation"


@pytest.fixture
def lazy_autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after 0.1 s of real idleness, so worker-thread file I/O finishes first."""
    return trio.testing.MockClock(autojump_threshold=0.1)


@asynccontextmanager
async def watching(
    tmp_path: Path, *, storage_full: dict[str, bool] | None = None, **sections: dict[str, Any]
) -> AsyncIterator[tuple[Harness, WatcherStatistics]]:
    """A harness with the watcher and the lane prober running (the real N-Drive probe; the storage probe
    fails while ``storage_full["on"]``)."""
    sections.setdefault("ndrive", {"settle_s": 30.0, "scan_interval_s": 5.0})
    sections.setdefault("lanes", {"probe_initial_s": 10.0, "probe_max_s": 60.0})
    async with harness(tmp_path, **sections) as h, trio.open_nursery() as nursery:
        stats = WatcherStatistics()
        assert h.dispatcher is not None
        ndrive_limiter = trio.CapacityLimiter(6)

        async def storage_ok() -> None:
            if storage_full is not None and storage_full["on"]:
                raise StorageUnavailable("still full", path=str(tmp_path / "storage"))

        health = {"intake": lambda: ndrive_health_probe(h.config, ndrive_limiter), "storage": storage_ok}
        nursery.start_soon(
            lambda: run_ndrive_watcher(
                store=h.store,
                config=h.config,
                dispatcher=h.dispatcher,  # type: ignore[arg-type]
                lanes=h.lanes,
                copy_limiter=trio.CapacityLimiter(2),
                ndrive_limiter=ndrive_limiter,
                heartbeats=h.heartbeats,
                health=health,
                statistics=stats,
            )
        )
        nursery.start_soon(
            lambda: run_lane_prober(
                lanes=h.lanes,
                health=health,
                store=h.store,
                wake=h.dispatcher.wake,  # type: ignore[union-attr]
                heartbeats=h.heartbeats,
                clock=trio.current_time,
            )
        )
        yield h, stats
        nursery.cancel_scope.cancel()


def session_dir(tmp_path: Path, name: str, workstation: str = WS) -> Path:
    return tmp_path / "ndrive" / workstation / name


async def test_settle_window_resets_on_change_and_late_files_are_imported(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing is imported while the folder changes; once stable for settle_s, every file is imported."""
    async with watching(tmp_path) as (h, stats):
        first = write_session(tmp_path, WS, "s1", 1, seed=1)
        await trio.sleep(20)
        assert await h.store.assets.counts_by_state() == {}
        late = write_session(tmp_path, WS, "s1", 1, seed=2)  # arrives inside the window
        await trio.sleep(20)
        assert await h.store.assets.counts_by_state() == {}, "the late file must restart the settle window"
        await trio.sleep(40)
        assert await h.store.assets.counts_by_state() == {"ingested": 2}
        assert sorted(h.driven) == sorted(first + late)
        assert session_dir(tmp_path, "imported_s1").is_dir()
        assert stats.sessions_imported == 1


async def test_a_folder_that_never_settles_is_never_imported(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """A session that changes more often than settle_s stays on the N-Drive, untouched."""
    async with watching(tmp_path) as (h, _):
        for seed in range(10):
            write_session(tmp_path, WS, "busy", 1, seed=10 + seed)
            await trio.sleep(15)
        assert await h.store.assets.counts_by_state() == {}
        assert session_dir(tmp_path, "busy").is_dir()


async def test_nasty_metadata_rejects_only_its_asset_and_intake_goes_on(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """Invalid UTF-8 and deeply nested JSON are rejected with a note; the rest of that folder and others import."""
    s1 = write_session(tmp_path, WS, "s1", 4, seed=3)
    s2 = write_session(tmp_path, WS, "s2", 2, seed=4)
    other = write_session(tmp_path, "test-workstation-2", "s3", 2, seed=5)
    folder = session_dir(tmp_path, "s1")
    (folder / f"{s1[0]}.json").write_bytes(b'{"asset_guid": "\xff\xfe bad bytes"}')
    (folder / f"{s1[1]}.json").write_bytes(b"[" * 5000 + b"]" * 5000)
    async with watching(tmp_path) as (h, stats):
        await trio.sleep(80)
        assert await h.store.assets.counts_by_state() == {"ingested": 2 + 2 + 2}
        assert sorted(h.driven) == sorted(s1[2:] + s2 + other)
        rejected = {r.name: r.reason for r in await h.store.intake.rejections()}
        assert "not UTF-8" in rejected[s1[0]]
        assert "nested too deeply" in rejected[s1[1]]
        for guid in s1[:2]:
            assert (session_dir(tmp_path, "imported_s1") / f"{guid}.error.txt").exists()
        assert stats.sessions_imported == 3
        assert h.restarts() == 0


async def test_an_unexpected_error_for_one_asset_rejects_only_that_asset(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything raised while copying one asset (here a RuntimeError) is that asset's rejection, never a crash."""
    guids = write_session(tmp_path, WS, "s1", 3, seed=6)
    real_copy = _session_import.copy_with_crc

    def copy(src: Path, dst: Path) -> Any:
        if src.name.startswith(guids[1]):
            raise RuntimeError("a bug nobody foresaw")
        return real_copy(src, dst)

    monkeypatch.setattr(_session_import, "copy_with_crc", copy)
    async with watching(tmp_path) as (h, _):
        await trio.sleep(60)
        assert sorted(h.driven) == sorted([guids[0], guids[2]])
        [rejection] = await h.store.intake.rejections()
        assert rejection.guid == guids[1]
        assert "unexpected problem" in rejection.reason
        assert "RuntimeError" in rejection.reason
        assert (session_dir(tmp_path, "imported_s1") / f"{guids[1]}.error.txt").exists()


async def test_a_failing_mount_pauses_the_intake_lane_and_nothing_is_rejected(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO from the N-Drive pauses the intake lane (no rejection); once the mount answers, intake resumes."""
    guids = write_session(tmp_path, WS, "s1", 2, seed=7)
    broken = {"on": True}
    real = _watcher.list_session_folders

    def listing(root: Path, workstation: str) -> list[Path]:
        if broken["on"]:
            raise NdriveUnavailable("the N-Drive at /x cannot be read (Input/output error): check the mount", path="/x")
        return real(root, workstation)

    monkeypatch.setattr(_watcher, "list_session_folders", listing)
    async with watching(tmp_path) as (h, _):
        await trio.sleep(30)
        assert h.lanes.intake.paused
        assert "Input/output error" in h.lanes.intake.reason
        assert await h.store.intake.rejections() == []
        pauses = h.lanes.intake.pauses
        broken["on"] = False
        await trio.sleep(120)
        assert not h.lanes.intake.paused
        assert sorted(h.driven) == sorted(guids)
        assert h.lanes.intake.pauses == pauses
        assert h.restarts() == 0


async def test_a_hung_ndrive_call_pauses_the_intake_lane(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stuck mount (every call hangs) is abandoned after ndrive.io_timeout_s; the probe hangs too: the lane
    pauses."""
    write_session(tmp_path, WS, "s1", 1, seed=8)
    stuck = threading.Event()

    def hang(*args: Any) -> Any:
        stuck.wait(30)  # a real thread stuck in the kernel; released at the end of the test
        raise OSError(errno.EIO, "gone")

    monkeypatch.setattr(_watcher, "snapshot_session", hang)
    monkeypatch.setattr(_watcher, "missing_workstations", hang)
    try:
        async with watching(tmp_path, ndrive={"settle_s": 30.0, "scan_interval_s": 5.0, "io_timeout_s": 20.0}) as (
            h,
            _,
        ):
            await trio.sleep(45)
            assert h.lanes.intake.paused
            assert "did not answer within 20 s" in h.lanes.intake.reason
            assert h.restarts() == 0
    finally:
        stuck.set()


async def test_one_hung_folder_is_that_folders_problem_while_the_ndrive_answers(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only one folder hangs; the N-Drive root answers: no lane pause, the other folder is imported, the hung
    one holds one thread only (it is not looked at while its call hangs), and after a few failed rounds the
    data manager is told in a rejection."""
    write_session(tmp_path, WS, "bad", 1, seed=81)
    [good] = write_session(tmp_path, WS, "good", 1, seed=82)
    stuck = threading.Event()
    hung: list[Path] = []
    real_snapshot = _watcher.snapshot_session

    def hang_in_bad(session: Path) -> Any:
        if session.name == "bad":
            hung.append(session)
            stuck.wait(600)
            raise OSError(errno.EIO, "gone")
        return real_snapshot(session)

    monkeypatch.setattr(_watcher, "snapshot_session", hang_in_bad)
    try:
        async with watching(tmp_path, ndrive={"settle_s": 30.0, "scan_interval_s": 5.0, "io_timeout_s": 20.0}) as (
            h,
            _,
        ):
            await trio.sleep(400)
            assert not h.lanes.intake.paused
            assert await h.store.assets.get(good) is not None
            assert len(hung) == 1, "no second thread is spent on a folder whose call still hangs"
            [rejection] = await h.store.intake.rejections()
            assert rejection.session == str(session_dir(tmp_path, "bad"))
            assert "failed 3 rounds in a row" in rejection.reason
            assert "has not returned yet" in rejection.reason or "did not answer within 20 s" in rejection.reason
    finally:
        stuck.set()


async def test_a_full_local_disk_pauses_the_storage_lane_without_rejecting(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on local storage pauses the storage lane; the folder stays; nothing is rejected; then it imports."""
    guids = write_session(tmp_path, WS, "s1", 2, seed=9)
    full = {"on": True}
    real_copy = _session_import.copy_with_crc

    def copy(src: Path, dst: Path) -> Any:
        if full["on"]:
            raise StorageUnavailable(f"no space left for {dst}", path=str(dst))
        return real_copy(src, dst)

    monkeypatch.setattr(_session_import, "copy_with_crc", copy)
    async with watching(tmp_path, storage_full=full) as (h, _):
        await trio.sleep(60)
        assert h.lanes.storage.paused
        assert h.lanes.storage.pauses == 1
        assert session_dir(tmp_path, "s1").is_dir()
        assert await h.store.intake.rejections() == []
        full["on"] = False
        await trio.sleep(120)
        assert not h.lanes.storage.paused
        assert sorted(h.driven) == sorted(guids)
        assert session_dir(tmp_path, "imported_s1").is_dir()


async def test_a_stray_file_in_local_storage_holds_only_its_asset(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """A file where an asset's local folder belongs blocks that asset only, with a note; fixed, it imports."""
    guids = write_session(tmp_path, WS, "s1", 2, seed=10)
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / guids[0]).write_text("left here by someone")
    async with watching(tmp_path) as (h, _):
        await trio.sleep(60)
        assert h.driven == [guids[1]]
        [rejection] = await h.store.intake.rejections()
        assert rejection.kind == "storage"
        assert rejection.guid == guids[0]
        note = (session_dir(tmp_path, "s1") / f"{guids[0]}.error.txt").read_text()
        assert "Nothing is wrong with these files" in " ".join(note.split())
        assert session_dir(tmp_path, "s1").is_dir(), "the folder stays open until every asset is in"
        assert not h.lanes.storage.paused
        (storage / guids[0]).unlink()
        await trio.sleep(60)
        assert sorted(h.driven) == sorted(guids)
        assert await h.store.intake.rejections() == []
        assert session_dir(tmp_path, "imported_s1").is_dir()


async def test_a_file_rewritten_during_the_copy_is_imported_once_it_settles(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that changes while being copied is not rejected: the folder is looked at again and imported."""
    guids = write_session(tmp_path, WS, "s1", 1, seed=11)
    real_copy = _session_import.copy_with_crc
    calls = {"tif": 0}

    def copy(src: Path, dst: Path) -> Any:
        calls["tif"] += src.suffix == ".tif"
        if calls["tif"] == 1 and src.suffix == ".tif":
            with src.open("ab") as handle:  # the digitiser re-exports while we copy ...
                handle.write(b"more")
            raise CopyMismatch(f"{src} changed while it was being copied", path=src)  # ... which the copy sees
        return real_copy(src, dst)

    monkeypatch.setattr(_session_import, "copy_with_crc", copy)
    async with watching(tmp_path) as (h, stats):
        await trio.sleep(120)
        assert h.driven == guids
        assert await h.store.intake.rejections() == []
        [tif] = [f for f in await h.store.assets.files(guids[0]) if f.record.name.endswith(".tif")]
        assert tif.record.size == (session_dir(tmp_path, "imported_s1") / f"{guids[0]}.tif").stat().st_size
        assert stats.deferred >= 1


async def test_a_folder_that_cannot_be_examined_is_rejected_once_until_it_changes(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder-level problem leaves a folder note, no rename, and is not planned again until the folder changes."""
    write_session(tmp_path, WS, "s1", 1, seed=12)
    plans = {"n": 0}
    real_plan = _session_import.plan_session

    def plan(session: Path, rules: Any) -> Any:
        plans["n"] += 1
        result = real_plan(session, rules)
        return type(result)(candidates=(), rejections=(), folder_problem="the folder could not be examined (test)")

    monkeypatch.setattr(_session_import, "plan_session", plan)
    async with watching(tmp_path) as (h, stats):
        await trio.sleep(200)
        assert plans["n"] == 1
        assert stats.sessions_rejected == 1
        assert (session_dir(tmp_path, "s1") / "_session.error.txt").exists()
        assert [r.kind for r in await h.store.intake.rejections()] == ["session"]
        write_session(tmp_path, WS, "s1", 1, seed=13)  # the digitiser changes it
        await trio.sleep(100)
        assert plans["n"] == 2


async def test_a_folder_that_crashes_the_import_is_rejected_as_a_whole_and_left_alone(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met in one folder, round after round: after 3 rounds the folder is rejected as a whole (a note
    for the digitiser, a rejection for the data manager) and not tried again until it changes."""
    write_session(tmp_path, WS, "s1", 1, seed=83)
    calls: list[int] = []

    async def crash(self: Any, *args: Any) -> bool:
        calls.append(1)
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(_session_import.SessionImporter, "import_session", crash)
    async with watching(tmp_path, ndrive={"settle_s": 30.0, "scan_interval_s": 30.0}) as (h, stats):
        await trio.sleep(600)
        assert len(calls) == 3
        assert stats.crashes == 3
        [rejection] = await h.store.intake.rejections()
        assert rejection.kind == "session"
        assert "unexpected problem (ZeroDivisionError: a bug)" in rejection.reason
        assert (session_dir(tmp_path, "s1") / "_session.error.txt").exists()
        assert h.restarts() == 0


async def test_a_renamed_folder_that_cannot_be_looked_at_again_is_given_up_with_a_rejection(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look at a renamed folder fails round after round: after 3 it is given up, its intent settled, and
    the data manager told where to look for files without a note."""
    write_session(tmp_path, WS, "s1", 1, seed=84)

    async def failing(self: Any, *args: Any) -> None:
        raise TransientError("Permission denied")

    monkeypatch.setattr(_session_import.SessionImporter, "relist", failing)
    async with watching(tmp_path, ndrive={"settle_s": 30.0, "scan_interval_s": 30.0}) as (h, _):
        await trio.sleep(900)
        assert await h.store.intake.pending_relists() == {}
        [rejection] = await h.store.intake.rejections()
        assert rejection.name == "(renamed folder)"
        assert "Permission denied" in rejection.reason
        assert str(session_dir(tmp_path, "imported_s1")) in rejection.reason
