"""The wake timer: hands assets to the dispatcher when their wake-up is due.

Due wake-ups of kind ``dispatch`` are retries after a back-off, assets released by a reopened lane, and
hand-overs parked while the dispatcher was full. The timer sleeps until the earliest one (an indexed MIN) or
until signalled, takes only the due rows (an indexed range), and hands each over *waiting for room*: with
the dispatcher full it blocks in one send instead of re-parking and re-reading in a loop, so 2 000 parked
assets cost nothing while they wait.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from integration.actors._dispatcher import Dispatcher
from integration.actors._heartbeats import Heartbeats
from integration.actors._signal import Signal
from integration.store import Store

__all__ = ["WakeTimerStatistics", "run_wake_timer"]

import msgspec

ACTOR = "wake-timer"
_BATCH = 500


class WakeTimerStatistics(msgspec.Struct, kw_only=True):
    """Counters of the wake timer (for tests and status)."""

    rounds: int = 0
    handed_over: int = 0


async def run_wake_timer(
    *,
    store: Store,
    dispatcher: Dispatcher,
    signal: Signal,
    heartbeats: Heartbeats,
    clock: Callable[[], float],
    statistics: WakeTimerStatistics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: hand every due ``dispatch`` wake-up to the dispatcher, earliest first."""
    stats = statistics or WakeTimerStatistics()
    task_status.started()
    while True:
        heartbeats.beat(ACTOR)
        due = await store.wakeups.due("dispatch", now=clock(), limit=_BATCH)
        if not due:
            upcoming = await store.wakeups.next_due("dispatch")
            await signal.wait(math.inf if upcoming is None else upcoming - clock())
            continue
        stats.rounds += 1
        for wake in due:
            await dispatcher.send(wake.entity_id)
            await store.wakeups.clear_if_unchanged(wake, "dispatch")
            stats.handed_over += 1
