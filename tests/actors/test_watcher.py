"""The N-Drive watcher's settle window, under trio's autojump clock (virtual time, no real waiting)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from daemon_support import make_config, write_session
from integration.actors import WatcherStatistics, run_ndrive_watcher
from integration.store import open_store


@pytest.fixture
def lazy_autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after 0.1 s of real idleness, so worker-thread file I/O finishes first."""
    return trio.testing.MockClock(autojump_threshold=0.1)


async def test_settle_window_resets_on_change_and_late_files_are_imported(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing is imported while the folder changes; once stable for settle_s, every file is imported."""
    config = make_config(tmp_path, 1, ndrive={"settle_s": 30.0, "scan_interval_s": 5.0})
    send, receive = trio.open_memory_channel[str](100)
    stats = WatcherStatistics()
    async with open_store(Path(config.storage.database)) as store, trio.open_nursery() as nursery:
        first = write_session(tmp_path, "test-workstation", "s1", 1, seed=1)
        nursery.start_soon(
            lambda: run_ndrive_watcher(
                store=store, config=config, dispatch=send, copy_limiter=trio.CapacityLimiter(2), statistics=stats
            )
        )
        await trio.sleep(20)
        assert await store.counts_by_state() == {}
        late = write_session(tmp_path, "test-workstation", "s1", 1, seed=2)  # arrives inside the window
        await trio.sleep(20)
        assert await store.counts_by_state() == {}, "the late file must restart the settle window"
        await trio.sleep(40)
        assert await store.counts_by_state() == {"ingested": 2}
        assert sorted([receive.receive_nowait(), receive.receive_nowait()]) == sorted(first + late)
        assert (tmp_path / "ndrive" / "test-workstation" / "imported_s1").is_dir()
        assert stats.sessions_imported == 1
        nursery.cancel_scope.cancel()


async def test_a_folder_that_never_settles_is_never_imported(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """A session that changes more often than settle_s stays on the N-Drive, untouched."""
    config = make_config(tmp_path, 1, ndrive={"settle_s": 30.0, "scan_interval_s": 5.0})
    send, _receive = trio.open_memory_channel[str](100)
    async with open_store(Path(config.storage.database)) as store, trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: run_ndrive_watcher(store=store, config=config, dispatch=send, copy_limiter=trio.CapacityLimiter(2))
        )
        for seed in range(10):
            write_session(tmp_path, "test-workstation", "busy", 1, seed=10 + seed)
            await trio.sleep(15)
        assert await store.counts_by_state() == {}
        assert (tmp_path / "ndrive" / "test-workstation" / "busy").is_dir()
        nursery.cancel_scope.cancel()
