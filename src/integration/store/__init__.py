"""The persistent track: sqlite3 (WAL, durable commits) owned by one thread, called from trio, with group commit.

One repository per aggregate (``store.assets``, ``store.intake``, ``store.lanes``, ``store.wakeups``,
``store.requests``, ``store.actors``) over shared generic pieces; ``AssetRepository.transition`` is the only way
an asset's state changes, and it writes the state and its event together. :func:`open_reader` is the
read-only view for ``integration status``; :func:`daemon_lock` keeps it to one daemon per database.
"""

from integration.store._actors import ActorRepository
from integration.store._assets import KEEP, AssetRepository, Keep
from integration.store._derivatives import DerivativeRecord, DerivativeRepository, NewDerivative
from integration.store._intake import IntakeRepository
from integration.store._jobs import JobRecord, JobRepository, job_key
from integration.store._lanes import LaneRepository
from integration.store._lock import CommandRunning, LockHolder, LockRole, daemon_lock, holder_of, lock_holder, lock_path
from integration.store._mos import NOT_AVAILABLE, MosEntry, MosRepository
from integration.store._reader import Reader, open_reader
from integration.store._records import (
    ActorRecord,
    AssetRecord,
    EventKind,
    EventRecord,
    LaneRecord,
    NewAsset,
    Rejection,
    RejectionStatus,
    RequestRecord,
    SessionRecord,
    StoredFile,
    Wake,
    WakeKind,
)
from integration.store._requests import RequestRepository, read_request, submit_request, withdraw_request
from integration.store._schema import MIGRATIONS, migrate, schema_version
from integration.store._store import Store, StoreStatistics, open_store
from integration.store._thread import DatabaseThread, StoreUnavailable
from integration.store._wakeups import DueWake, WakeupRepository

__all__ = [
    "KEEP",
    "MIGRATIONS",
    "NOT_AVAILABLE",
    "ActorRecord",
    "ActorRepository",
    "AssetRecord",
    "AssetRepository",
    "CommandRunning",
    "DatabaseThread",
    "DerivativeRecord",
    "DerivativeRepository",
    "DueWake",
    "EventKind",
    "EventRecord",
    "IntakeRepository",
    "JobRecord",
    "JobRepository",
    "Keep",
    "LaneRecord",
    "LaneRepository",
    "LockHolder",
    "LockRole",
    "MosEntry",
    "MosRepository",
    "NewAsset",
    "NewDerivative",
    "Reader",
    "Rejection",
    "RejectionStatus",
    "RequestRecord",
    "RequestRepository",
    "SessionRecord",
    "Store",
    "StoreStatistics",
    "StoreUnavailable",
    "StoredFile",
    "Wake",
    "WakeKind",
    "WakeupRepository",
    "daemon_lock",
    "holder_of",
    "job_key",
    "lock_holder",
    "lock_path",
    "migrate",
    "open_reader",
    "open_store",
    "read_request",
    "schema_version",
    "submit_request",
    "withdraw_request",
]
