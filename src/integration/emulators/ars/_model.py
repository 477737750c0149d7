"""The in-memory model of the emulated ARS and file proxy: assets, shares, files, counters.

:class:`Core` holds all state; the service modules (``_assets``, ``_shares``, ``_uploads``, ``_erda``) are
functions over it. Every index a request needs is a dict, so no request scans all assets.
"""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from integration.emulators.ars._keycloak import Client, TokenIssuer
from integration.emulators.ars._reference import ReferenceData
from integration.emulators.ars._roles import ADMIN
from integration.emulators.ars._settings import EmulatorSettings, FaultSettings
from integration.emulators.ars._storage import Storage

__all__ = [
    "IN_PROGRESS",
    "AssetEntry",
    "Core",
    "Counters",
    "EmulatorStats",
    "FileRow",
    "Share",
    "clients_of",
    "now_iso",
]

IN_PROGRESS = frozenset(
    {
        "METADATA_RECEIVED",
        "ASSET_RECEIVED",
        "ERDA_FAILED",
        "SPECIFY_SYNC_SCHEDULED",
        "SPECIFY_SYNC_FAILED",
        "SHARE_REOPENED",
    }
)
"""Internal statuses that ``GET /v1/assets/inprogress`` lists."""


def clients_of(settings: EmulatorSettings) -> list[Client]:
    """The Keycloak clients ``settings`` configure: the pipeline's client and the admin client."""
    return [
        Client(client_id=settings.client_id, secret=settings.client_secret, roles=settings.client_roles),
        Client(client_id=settings.admin_client_id, secret=settings.admin_client_secret, roles=(ADMIN,)),
    ]


def now_iso() -> str:
    """The current instant as Jackson writes it: ISO-8601 UTC with ``Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FileRow(msgspec.Struct, kw_only=True):
    """One file row of the file proxy (``DasscoFile``)."""

    file_id: int
    rel: str
    size_bytes: int
    crc: int
    mime_type: str
    sync_status: str = "NEW_FILE"
    """``NEW_FILE`` until an ERDA sync, then ``SYNCHRONIZED``."""
    delete_after_sync: bool = False
    """A synced file that an upload to the open share replaced."""


class Share(msgspec.Struct, kw_only=True):
    """The one writeable directory of an asset."""

    guid: str
    institution: str
    collection: str
    allocation_mb: int
    files: dict[str, FileRow] = {}
    """What the share folder holds, ``parents/…`` included."""
    state: str = "OPEN"
    """``OPEN`` (uploads), ``QUEUED`` (awaiting ERDA sync) or ``FAILED`` (sync attempts exhausted)."""
    attempts: int = 0
    """ERDA sync attempts since the last ``synchronize``."""
    parent_bytes: int = 0

    @property
    def used_bytes(self) -> int:
        """Bytes in the share, parent files included."""
        return sum(row.size_bytes for row in self.files.values())


class AssetEntry(msgspec.Struct, kw_only=True):
    """A stored asset: its JSON record, events and synced files."""

    record: dict[str, Any]
    events: list[dict[str, Any]] = []
    erda_files: dict[str, FileRow] = {}
    synced_once: bool = False
    """Whether a sync has completed (CREATE_ASSET event written)."""


class Counters(msgspec.Struct, kw_only=True):
    """Running counters; :class:`EmulatorStats` is their frozen snapshot."""

    create_requests: int = 0
    creates_committed: int = 0
    creates_committed_by_guid: dict[str, int] = {}
    duplicate_create_rejections: int = 0
    uploads_ok: int = 0
    uploads_crc_mismatch: int = 0
    syncs_requested: int = 0
    erda_synced: int = 0
    erda_sync_failures: int = 0
    token_requests: int = 0
    requests_total: int = 0


class EmulatorStats(msgspec.Struct, kw_only=True, frozen=True):
    """What the emulator has done so far (``ArsEmulator.stats()``, ``GET /_emulator/state``)."""

    create_requests: int
    """POSTs to ``/v1/assetmetadata``, whatever their outcome."""
    creates_committed: int
    """Assets actually stored (a create answered 504 by ``drop_reply_after_create`` counts)."""
    creates_committed_by_guid: dict[str, int]
    duplicate_create_rejections: int
    """Creates refused with 400 "already exists" or 403 "already being processed"."""
    uploads_ok: int
    uploads_crc_mismatch: int
    syncs_requested: int
    """Accepted ``synchronize`` calls."""
    erda_synced: int
    """Sync jobs that completed."""
    erda_sync_failures: int
    """Sync jobs that failed (``erda_fail_next``)."""
    token_requests: int
    requests_total: int
    """Requests seen, ``/_emulator/*`` excluded."""


class Core:
    """All state of one emulator instance."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.faults: FaultSettings = settings.faults
        self.ref = ReferenceData(settings)
        self.storage = Storage(settings.data_dir)
        self.issuer = TokenIssuer(
            clients=clients_of(settings),
            lifetime_s=settings.token_lifetime_s,
            key=settings.signing_key,
        )
        self.counters = Counters()
        self.rng = random.Random(settings.seed)
        self.clock = time.monotonic
        self.assets: dict[str, AssetEntry] = {}
        self.shares: dict[str, Share] = {}
        self.queue: dict[str, None] = {}
        """GUIDs of queued shares, oldest first (an ordered set)."""
        self.in_progress: dict[str, None] = {}
        """GUIDs whose internal status is in :data:`IN_PROGRESS`."""
        self.creating: dict[str, float] = {}
        """ARS create de-dup: GUID → monotonic deadline."""
        self.share_creating: dict[str, float] = {}
        """File-proxy createShare de-dup: GUID → monotonic deadline."""
        self.allocated_mb = 0
        self._file_ids = itertools.count(1)

    def next_file_id(self) -> int:
        """A fresh ``fileId``."""
        return next(self._file_ids)

    @property
    def remaining_mb(self) -> int:
        """Share disk not yet allocated."""
        return self.settings.total_storage_mb - self.allocated_mb

    def take_fault(self, name: str) -> bool:
        """Consume one unit of the counting fault ``name``; whether it fired."""
        left: int = getattr(self.faults, name)
        if left <= 0:
            return False
        self.faults = msgspec.structs.replace(self.faults, **{name: left - 1})
        return True

    def set_status(self, guid: str, status: str) -> None:
        """Set the internal status of ``guid`` and keep the in-progress index right."""
        self.assets[guid].record["internal_status"] = status
        if status in IN_PROGRESS:
            self.in_progress[guid] = None
        else:
            self.in_progress.pop(guid, None)

    def blocked(self, table: dict[str, float], guid: str) -> bool:
        """Whether ``guid`` has an unexpired de-dup entry in ``table`` (expired ones are dropped)."""
        deadline = table.get(guid)
        if deadline is None:
            return False
        if deadline > self.clock():
            return True
        del table[guid]
        return False

    def status_info(self, guid: str, *, with_parents: bool = True) -> dict[str, Any]:
        """``AssetStatusInfo`` of a stored asset."""
        record = self.assets[guid].record
        share = self.shares.get(guid)
        return {
            "asset_guid": guid,
            "parent_guid": list(record["parent_guids"]) if with_parents else None,
            "error_timestamp": record["error_timestamp"],
            "status": record["internal_status"],
            "error_message": record["error_message"],
            "share_allocation_mb": None if share is None else share.allocation_mb,
        }
