"""Nothing waits in a loop: the wake timer, the lane prober and the supervisor, counted under virtual time."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trio
import trio.testing

from actor_support import harness
from integration.actors import (
    Heartbeats,
    Signal,
    WakeTimerStatistics,
    run_lane_prober,
    run_wake_timer,
    supervise,
)
from integration.errors import ArsUnavailable
from integration.state_machines import AssetState
from integration.store import Wake
from store.test_store import new_asset


@pytest.fixture
def lazy_autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after 0.1 s of real idleness, so database-thread calls finish first."""
    return trio.testing.MockClock(autojump_threshold=0.1)


async def test_a_full_dispatcher_makes_the_wake_timer_wait_not_spin(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """With 2 000 due wake-ups and a dispatcher that never frees a slot, the timer blocks in one send.

    The first release re-read and re-parked the due rows in a loop (1 684 ticks and 4.9 s of CPU in 5 s).
    """
    forever = trio.Event()

    async def stuck(guid: str) -> None:
        await forever.wait()

    async with harness(tmp_path, drive=stuck, slots=1, queue_size=4) as h:
        for i in range(2000):
            await h.store.assets.record_ingested(new_asset(f"g{i:04}"), actor="t")
        await h.store.run(
            lambda c: c.execute(
                "INSERT INTO wakeups (entity_kind, entity_id, kind, due, reason) "
                "SELECT 'asset', guid, 'dispatch', 0, 'parked' FROM assets"
            )
        )
        stats = WakeTimerStatistics()
        calls_before = h.store.statistics().calls
        async with trio.open_nursery() as nursery:
            assert h.dispatcher is not None
            nursery.start_soon(
                lambda: run_wake_timer(
                    store=h.store,
                    dispatcher=h.dispatcher,  # type: ignore[arg-type]
                    signal=h.timer,
                    heartbeats=h.heartbeats,
                    clock=trio.current_time,
                    statistics=stats,
                )
            )
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
        assert stats.rounds == 1
        assert stats.handed_over <= 1 + 4 + 1  # one running, the queue, one blocked send in progress
        assert h.store.statistics().calls - calls_before < 20


async def test_the_prober_waits_for_the_next_probe_and_backs_off(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """A lane that stays down is probed at a growing interval (no faster than probe_initial_s), then resumes."""
    probes: list[float] = []
    down = {"on": True}

    async def health() -> None:
        probes.append(trio.current_time())
        if down["on"]:
            raise ArsUnavailable("ARS is unreachable: check it")

    async with harness(tmp_path, lanes={"probe_initial_s": 1.0, "probe_max_s": 8.0}) as h:
        await h.lanes.ars.pause("ARS is unreachable", probe="health", actor="test")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: run_lane_prober(
                    lanes=h.lanes,
                    health={"ars": health},
                    store=h.store,
                    wake=h.dispatcher.wake,  # type: ignore[union-attr]
                    heartbeats=h.heartbeats,
                    clock=trio.current_time,
                )
            )
            await trio.sleep(40)
            gaps = [round(b - a, 3) for a, b in itertools.pairwise(probes)]
            assert gaps[:4] == [2.0, 4.0, 8.0, 8.0]
            assert len(probes) <= 8
            down["on"] = False
            await trio.sleep(10)
            assert not h.lanes.ars.paused
            nursery.cancel_scope.cancel()


async def test_a_hold_with_nobody_waiting_is_released_and_one_waiting_asset_probes_it(
    tmp_path: Path, lazy_autojump_clock: trio.testing.MockClock
) -> None:
    """A group hold is probed by one waiting asset (handed to the dispatcher); with none left, it is released."""
    async with harness(tmp_path, lanes={"probe_initial_s": 1.0, "probe_max_s": 4.0}) as h:
        await h.store.assets.record_ingested(new_asset("a"), actor="t")
        key = "hold:workstation:i/w"
        hold = await h.lanes.hold(key, "out of service", probe_guid="gone", actor="test")
        await h.store.assets.update("a", expected=AssetState.INGESTED, wake=Wake(kind="wait", lane=key))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: run_lane_prober(
                    lanes=h.lanes,
                    health={},
                    store=h.store,
                    wake=h.dispatcher.wake,  # type: ignore[union-attr]
                    heartbeats=h.heartbeats,
                    clock=trio.current_time,
                )
            )
            await trio.sleep(1.5)
            assert hold.probe_guid in ("gone", "a")
            await trio.sleep(5)
            assert "a" in h.driven, "the waiting asset was handed over to probe the hold"
            await h.store.assets.update("a", expected=AssetState.INGESTED, wake=None)
            await trio.sleep(10)
            assert key not in h.lanes.holds, "nobody waits any more: the hold is released"
            nursery.cancel_scope.cancel()


async def test_the_supervisor_restarts_with_back_off_that_resets_after_a_healthy_spell(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Crashes double the restart delay; a run longer than restart_healthy_after_s starts it afresh."""
    starts: list[float] = []
    heartbeats = Heartbeats(clock=trio.current_time)
    runs = [0.0, 0.0, 0.0, 120.0, 0.0]  # how long each run lasts before it crashes; then it runs for good

    async def actor() -> None:
        starts.append(trio.current_time())
        if len(starts) > len(runs):
            await trio.sleep_forever()
        await trio.sleep(runs[len(starts) - 1])
        raise RuntimeError("crash")

    with trio.move_on_after(300):
        await supervise("flaky", actor, heartbeats=heartbeats, healthy_after_s=60.0)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    assert gaps[:3] == [0.5, 1.0, 2.0]  # doubling back-off
    assert gaps[3] == 120.5  # after a 120 s healthy run the back-off starts at 0.5 s again
    assert heartbeats.actors["flaky"].restarts == 5
    assert "RuntimeError: crash" in heartbeats.actors["flaky"].last_error


async def test_the_supervisor_lets_cancellation_through(autojump_clock: trio.testing.MockClock) -> None:
    """Shutdown (cancellation) is never caught as a crash."""
    heartbeats = Heartbeats(clock=trio.current_time)

    async def forever() -> None:
        await trio.sleep_forever()

    with trio.move_on_after(1):
        await supervise("calm", forever, heartbeats=heartbeats, healthy_after_s=60.0)
    assert heartbeats.actors["calm"].restarts == 0


async def test_a_signal_set_while_nobody_waits_is_not_lost() -> None:
    """Signal.set before wait wakes the next wait at once; an unset wait times out."""
    signal = Signal()
    signal.set()
    assert await signal.wait(10.0)
    with trio.move_on_after(0.05) as scope:
        assert not await signal.wait(0.01)
    assert not scope.cancelled_caught
