"""What the store hands out and takes in: frozen msgspec Structs, one per kind of row."""

from __future__ import annotations

from typing import Literal

import msgspec

from integration.domain import FileRecord
from integration.state_machines import AssetState

__all__ = [
    "ActorRecord",
    "AssetRecord",
    "EventKind",
    "EventRecord",
    "LaneRecord",
    "NewAsset",
    "Rejection",
    "RejectionStatus",
    "RequestRecord",
    "SessionRecord",
    "StoredFile",
    "Wake",
    "WakeKind",
]

#: What a wake-up waits for, named by who acts on it: ``dispatch`` (the wake timer hands the asset to the
#: dispatcher at ``due``), ``sync_poll`` (the sync poller asks ARS at ``due``), ``wait`` (no time: the lane
#: or group hold named in ``lane`` must reopen first).
WakeKind = Literal["dispatch", "sync_poll", "wait"]
#: ``transition`` moves the state; ``intent``/``outcome`` bracket an external side effect; ``note`` records
#: something that happened without a state change (a file added, a hold, an operator's action).
EventKind = Literal["transition", "intent", "outcome", "note"]
RejectionStatus = Literal["open", "resolved", "acknowledged"]


class Wake(msgspec.Struct, frozen=True, kw_only=True):
    """An entity's one pending wake-up: what it waits for, until when, and why (shown by ``status``)."""

    kind: WakeKind
    due: float | None = None
    lane: str | None = None
    reason: str = ""


class AssetRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the track: where an asset is, what it waits for, and what it has been through."""

    guid: str
    state: AssetState
    resume_state: AssetState | None
    pipeline: str
    institution: str
    collection: str
    workstation: str
    session: str
    local_dir: str
    allocation_mb: int
    resyncs: int
    attempts: int  # transient failures since the last forward step (the retry budget)
    crc_mismatches: int  # 507 answers since the last forward step
    reason: str
    in_ars: bool  # ARS is known to hold the asset (created or found by reconciliation)
    waiting_since: float | None  # when the current wait of its own began (ARS de-dup block, too big for now)
    state_since: float
    created_at: float
    updated_at: float
    intents: frozenset[str] = frozenset()  # operations started but not yet settled (reconcile, never repeat)
    wake: Wake | None = None

    def has_intent(self, operation: str) -> bool:
        """Whether ``operation`` was started and its outcome is not yet recorded."""
        return operation in self.intents


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file of an asset as the store knows it; ``ndrive_path`` follows the session folder's rename."""

    record: FileRecord
    ndrive_path: str
    uploaded: bool


class NewAsset(msgspec.Struct, frozen=True, kw_only=True):
    """Everything recorded when an asset is ingested (or its corrected files are delivered again)."""

    guid: str
    pipeline: str
    institution: str
    collection: str
    workstation: str
    session: str
    local_dir: str
    allocation_mb: int
    metadata_json: bytes
    files: tuple[tuple[FileRecord, str], ...]  # (record, N-Drive path)


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the audit log, about one entity (``entity_kind`` ``asset``, ``session``, ``lane``, ...)."""

    id: int
    entity_kind: str
    entity_id: str
    kind: EventKind
    from_state: str | None
    to_state: str
    trigger: str
    reason: str
    actor: str
    at: float

    @property
    def guid(self) -> str:
        """The entity's id (the asset GUID for asset events)."""
        return self.entity_id


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """An intake rejection: files on the N-Drive that were not taken in, and why.

    ``kind`` is ``intake`` (the digitiser's files), ``session`` (a whole folder) or ``storage`` (our local
    storage refused the copy: the data manager's problem). ``status`` is ``open`` until a later delivery of
    the same asset is imported (``resolved``) or an operator acknowledges it (``acknowledged``).
    """

    session: str
    name: str
    guid: str | None
    reason: str
    at: float
    kind: str = "intake"
    id: int = 0
    status: RejectionStatus = "open"
    closed_at: float | None = None
    closed_reason: str = ""


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A session folder the watcher dealt with, and where it went."""

    path: str
    workstation: str
    status: str  # imported | rejected
    assets: int
    rejected: int
    at: float
    imported_path: str | None
    problem: str


class LaneRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A lane (``ars``, ``intake``, ``storage``) or a group hold (``hold:<kind>:<value>``) as persisted.

    ``cycles`` counts failed probes since it closed; ``next_probe`` is when it is probed next; ``probe`` is
    ``health`` (ask the resource) or ``asset`` (one waiting asset's own retry).
    """

    name: str
    kind: Literal["lane", "group"]
    paused: bool
    reason: str
    since: float
    probe: str
    cycles: int
    next_probe: float | None


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's request to the daemon (``retry``, ``ack``) and, once handled, its result."""

    id: int
    kind: str
    body: str  # JSON
    requested_by: str
    created_at: float
    status: Literal["pending", "done", "failed"]
    result: str  # JSON once handled
    done_at: float | None


class ActorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An actor's heartbeat and crash record, as the daemon last wrote it."""

    name: str
    pid: int
    started_at: float
    beat_at: float
    restarts: int
    last_error: str
    last_error_at: float | None
