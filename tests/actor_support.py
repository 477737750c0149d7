"""Helpers for actor tests: one store, lanes, heartbeats and a dispatcher that records what it is handed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from daemon_support import make_config
from integration.actors import Dispatcher, Heartbeats, Lanes, Signal
from integration.config import Config
from integration.store import Store, open_store


class Harness:
    """What an actor test runs an actor against."""

    def __init__(self, *, store: Store, config: Config, lanes: Lanes, heartbeats: Heartbeats, timer: Signal) -> None:
        self.store = store
        self.config = config
        self.lanes = lanes
        self.heartbeats = heartbeats
        self.timer = timer
        self.driven: list[str] = []
        self.dispatcher: Dispatcher | None = None

    def restarts(self) -> int:
        """How many times any actor crashed and was restarted."""
        return sum(health.restarts for health in self.heartbeats.actors.values())


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    clock: Callable[[], float] = trio.current_time,
    drive: Callable[[str], Awaitable[None]] | None = None,
    queue_size: int = 100,
    slots: int = 8,
    **sections: dict[str, Any],
) -> AsyncIterator[Harness]:
    """A store (clock: trio's, so virtual time works), lanes, and a dispatcher running ``drive`` (default: record)."""
    config = make_config(tmp_path, 1, **sections)
    async with open_store(Path(config.storage.database), clock=clock) as store, trio.open_nursery() as nursery:
        timer = Signal()

        async def release(lane: str, reason: str) -> int:
            woken = await store.wakeups.release(lane, reason=reason)
            timer.set()
            return woken

        lanes = Lanes(store=store, config=config.lanes, clock=clock, release=release)
        result = Harness(store=store, config=config, lanes=lanes, heartbeats=Heartbeats(clock=clock), timer=timer)

        async def record(guid: str) -> None:
            result.driven.append(guid)

        result.dispatcher = Dispatcher(
            store=store,
            drive=drive or record,
            limiter=trio.CapacityLimiter(slots),
            queue_size=queue_size,
            timer=timer,
        )
        await nursery.start(result.dispatcher.run)
        yield result
        nursery.cancel_scope.cancel()
