"""Every actor's heartbeat and crash record, in memory, written to the store every ``daemon.heartbeat_s``.

An actor calls :meth:`Heartbeats.beat` whenever it finishes a round of work; the supervisor records crashes.
``integration status`` reads what was written: an actor that keeps crashing, or a daemon whose heartbeats
stopped, is something a human must look at.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import structlog
import trio

from integration.store import Store

__all__ = ["ActorHealth", "Heartbeats", "run_heartbeat_writer"]

log = structlog.get_logger()


class ActorHealth(msgspec.Struct, kw_only=True):
    """What is known about one actor of this process."""

    beat_at: float
    restarts: int = 0
    last_error: str = ""
    last_error_at: float | None = None


class Heartbeats:
    """The registry of this process's actors."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started_at = clock()
        self.actors: dict[str, ActorHealth] = {}

    def beat(self, name: str) -> None:
        """``name`` is alive and just did a round of work (or is waiting as it should)."""
        health = self.actors.get(name)
        if health is None:
            self.actors[name] = ActorHealth(beat_at=self._clock())
        else:
            health.beat_at = self._clock()

    def crashed(self, name: str, error: str) -> None:
        """``name`` crashed with ``error`` and is being restarted."""
        health = self.actors.setdefault(name, ActorHealth(beat_at=self._clock()))
        health.restarts += 1
        health.last_error = error[:500]
        health.last_error_at = self._clock()

    def snapshot(self) -> list[tuple[str, float, int, str, float | None]]:
        """(name, last beat, restarts, last error, its time) of every actor."""
        return [(n, h.beat_at, h.restarts, h.last_error, h.last_error_at) for n, h in sorted(self.actors.items())]


async def run_heartbeat_writer(
    *,
    store: Store,
    heartbeats: Heartbeats,
    interval_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Write every actor's heartbeat now and then every ``interval_s`` until cancelled."""
    task_status.started()
    while True:
        heartbeats.beat("heartbeat-writer")
        await store.actors.beat(heartbeats.snapshot(), started_at=heartbeats.started_at)
        await trio.sleep(interval_s)
