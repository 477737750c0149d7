"""The store: one database thread and one repository per aggregate, behind :func:`open_store`.

``store.assets`` (parent assets, their files and metadata), ``store.intake`` (session folders, rejections),
``store.lanes`` (lanes and group holds), ``store.wakeups`` (due work across entities), ``store.requests``
(operator requests), ``store.actors`` (heartbeats), ``store.jobs`` (processing jobs), ``store.derivatives``
(derivative child assets) and ``store.mos`` (multi-object specimen links) share the generic
pieces of :mod:`._core`: transition + event in one transaction, intents with idempotency keys, wake-ups with a
kind.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from integration.store._actors import ActorRepository
from integration.store._assets import AssetRepository
from integration.store._derivatives import DerivativeRepository
from integration.store._intake import IntakeRepository
from integration.store._jobs import JobRepository
from integration.store._lanes import LaneRepository
from integration.store._mos import MosRepository
from integration.store._requests import RequestRepository
from integration.store._schema import migrate
from integration.store._thread import DatabaseThread
from integration.store._wakeups import WakeupRepository

__all__ = ["Store", "StoreStatistics", "open_store"]


class StoreStatistics(msgspec.Struct, frozen=True):
    """Calls and transactions run so far (calls / transactions = the group-commit factor)."""

    calls: int
    transactions: int


class Store:
    """The repositories over one database thread. Create it with :func:`open_store`."""

    def __init__(self, db: DatabaseThread, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.assets = AssetRepository(db, clock)
        self.intake = IntakeRepository(db, clock)
        self.lanes = LaneRepository(db, clock)
        self.wakeups = WakeupRepository(db, clock)
        self.requests = RequestRepository(db, clock)
        self.actors = ActorRepository(db, clock)
        self.jobs = JobRepository(db, clock)
        self.derivatives = DerivativeRepository(db, clock)
        self.mos = MosRepository(db, clock)

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run an arbitrary function on the database thread (for tests and one-off admin queries)."""
        return await self._db.call(fn)

    @property
    def ended(self) -> str | None:
        """Why the store can no longer be used (its database thread ended), or None while it works."""
        return self._db.ended

    def statistics(self) -> StoreStatistics:
        """Calls and transactions run so far."""
        return StoreStatistics(calls=self._db.calls, transactions=self._db.transactions)


@asynccontextmanager
async def open_store(
    path: Path, *, clock: Callable[[], float] = time.time, synchronous: str = "FULL"
) -> AsyncIterator[Store]:
    """Open (creating and migrating as needed) the store at ``path``; closes it on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = DatabaseThread(path, synchronous=synchronous)
    db.start()
    try:
        await db.call(migrate)
        yield Store(db, clock=clock)
    finally:
        db.stop()
