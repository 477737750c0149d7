"""What the actors that move assets need, passed explicitly (no module-level clients, no service locator)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

import msgspec

from integration.actors._keyed_lock import KeyedLocks
from integration.actors._lanes import Lanes
from integration.adapters.ars import ArsClient
from integration.adapters.executors import Executor, JobSpec
from integration.config import Config
from integration.store import JobRecord, Store

__all__ = ["AssetDeps"]


class AssetDeps(msgspec.Struct, frozen=True, kw_only=True):
    """The dependencies of the asset actor and the sync poller."""

    store: Store
    ars: ArsClient
    lanes: Lanes
    config: Config
    wake_timer: Callable[[], None] = lambda: None  # a dispatch wake-up was stored: look at the wake-ups again
    wake_poller: Callable[[], None] = lambda: None  # a sync poll was stored: look at the polls again
    health: Mapping[str, Callable[[], Awaitable[None]]] = {}  # lane name -> its health probe (confirms a pause)
    clock: Callable[[], float] = time.time
    executor: Executor | None = None  # where processing jobs run (None: processing waits)
    job_spec: Callable[[JobRecord], JobSpec] | None = None  # the command of one attempt of one job
    started_at: float = 0.0  # when this daemon started: a job handed out before it belonged to the last one
    ars_records: KeyedLocks = msgspec.field(default_factory=KeyedLocks)  # one full-record update per asset at once
