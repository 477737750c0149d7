"""The supervisor: runs one long-lived actor forever, restarting it with back-off when it crashes.

The back-off doubles with every crash (capped) and starts afresh once the actor has run
``daemon.restart_healthy_after_s`` without crashing, so a daemon that runs for months does not wait the
maximum delay for a crash that happens once a week. Every crash is logged with its context and counted in the
actor's heartbeat record, which ``integration status`` shows.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog
import trio

from integration.actors._heartbeats import Heartbeats

__all__ = ["RESTART_INITIAL_S", "RESTART_MAX_S", "supervise"]

log = structlog.get_logger()

RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 30.0


async def supervise(
    name: str,
    actor: Callable[[], Awaitable[None]],
    *,
    heartbeats: Heartbeats,
    healthy_after_s: float,
) -> None:
    """Run ``actor`` until it returns; when it crashes, log it, record it and restart it with back-off.

    ``trio.Cancelled`` (shutdown) is never caught. An exception group out of the actor's own nurseries is a
    crash like any other (it is an ``Exception``).
    """
    failures = 0
    while True:
        started = trio.current_time()
        heartbeats.beat(name)
        try:
            await actor()
            return
        except Exception as exc:  # the single top-level catch: log with context, restart, never die silently
            if trio.current_time() - started >= healthy_after_s:
                failures = 0
            failures += 1
            delay = min(RESTART_MAX_S, RESTART_INITIAL_S * math.pow(2, failures - 1))
            heartbeats.crashed(name, f"{type(exc).__name__}: {exc}")
            log.exception("actor_crashed", actor=name, restart_in_s=delay, failures=failures)
            await trio.sleep(delay)
