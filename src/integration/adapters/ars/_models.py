"""What ARS and its file proxy answer, as msgspec Structs: the public records and the private wire shapes."""

from __future__ import annotations

import msgspec

__all__ = ["ArsAsset", "ArsFile", "ArsStatistics", "AssetStatus", "CreatedAsset", "ShareInfo"]

_SYNCED = frozenset({"ERDA_SYNCHRONISED", "COMPLETED"})  # COMPLETED: ARS before 2.3
_SYNC_FAILED = frozenset({"ERDA_FAILED", "ERDA_ERROR"})  # ERDA_ERROR: ARS before 2.3


class AssetStatus(msgspec.Struct, frozen=True):
    """The status record of one asset (``GET /ars/api/v1/assets/status/{guid}``).

    ``status`` is ARS's ``internal_status``; ``share_allocation_mb`` is the allocation of the open share,
    ``None`` when no share is open.
    """

    asset_guid: str
    status: str
    share_allocation_mb: int | None = None
    error_message: str | None = None
    error_timestamp: str | None = None
    parent_guid: list[str] | str | None = None

    @property
    def is_synced(self) -> bool:
        """True when ERDA holds the files and the share is closed: the only state that proves persistence."""
        return self.status in _SYNCED and self.share_allocation_mb is None

    @property
    def is_sync_failed(self) -> bool:
        """True when ARS gave up synchronising to ERDA; calling ``synchronize`` again re-queues it."""
        return self.status in _SYNC_FAILED


class ArsFile(msgspec.Struct, frozen=True):
    """A file ARS knows for an asset (``GET /file_proxy/api/assets/{guid}/files``); ``crc`` is unsigned CRC-32.

    ``delete_after_sync`` marks a synced file that was deleted (or replaced) in the open share: the next ERDA
    sync removes it, so it is on its way out.
    """

    path: str
    size_bytes: int = msgspec.field(name="sizeBytes")
    crc: int
    sync_status: str = msgspec.field(name="syncStatus")
    delete_after_sync: bool = msgspec.field(default=False, name="deleteAfterSync")

    @property
    def name(self) -> str:
        """The file's name in the asset (the last path segment)."""
        return self.path.rsplit("/", 1)[-1]


class CreatedAsset(msgspec.Struct, frozen=True):
    """An asset registered in ARS with its share open.

    ``share_path`` is ``None`` when the creation was settled by asking ARS for the status (after a lost
    answer); ``allocated_mb`` is then the open share's allocation, or 0 if ARS reports none.
    """

    guid: str
    share_path: str | None
    allocated_mb: int


class ArsStatistics(msgspec.Struct, frozen=True):
    """Counters since the client was made.

    ``requests``: HTTP requests sent to ARS and the file proxy; ``retries``: back-off retries scheduled;
    ``token_fetches``: tokens asked from Keycloak; ``failures``: calls that raised to their caller.
    """

    requests: int
    retries: int
    token_fetches: int
    failures: int


class ShareInfo(msgspec.Struct, frozen=True):
    """A share (work directory) the file proxy opened for an existing asset.

    ``path`` is ``/assetfiles/{institution}/{collection}/{guid}/``; ``allocated_mb`` its allocation in MB.
    """

    path: str
    allocated_mb: int


class ArsAsset(msgspec.Struct, frozen=True, kw_only=True):
    """What the integration reads of an asset record (``GET /ars/api/v1/assetmetadata/{guid}``).

    ``internal_status`` is ARS's processing status; ``created_by`` is the user ARS recorded as creating the
    metadata (for a client-credentials token: ``service-account-<client_id>``), ``None`` when ARS says nothing.
    """

    asset_guid: str
    institution: str | None = None
    collection: str | None = None
    workstation: str | None = None
    pipeline: str | None = None
    internal_status: str | None = None
    created_by: str | None = None
    parent_guids: tuple[str, ...] = ()
    file_formats: tuple[str, ...] = ()


class EventWire(msgspec.Struct, frozen=True):
    """One entry of an asset's ``events`` (lenient: only what is read)."""

    event: str | None = None
    user: str | None = None


class AssetWire(msgspec.Struct, frozen=True):
    """The asset record as ARS sends it; unknown fields are ignored, nulls tolerated."""

    asset_guid: str
    institution: str | None = None
    collection: str | None = None
    workstation: str | None = None
    pipeline: str | None = None
    internal_status: str | None = None
    events: list[EventWire] | None = None
    metadata_created_by: str | None = None
    update_user: str | None = msgspec.field(default=None, name="updateUser")
    parent_guids: list[str] | None = None
    file_formats: list[str] | None = None

    def typed(self) -> ArsAsset:
        """The public record; ``created_by`` from the CREATE_ASSET_METADATA event, else the stored user fields."""
        creators = [e.user for e in self.events or () if e.event == "CREATE_ASSET_METADATA" and e.user]
        return ArsAsset(
            asset_guid=self.asset_guid,
            institution=self.institution,
            collection=self.collection,
            workstation=self.workstation,
            pipeline=self.pipeline,
            internal_status=self.internal_status,
            created_by=(creators[0] if creators else None) or self.metadata_created_by or self.update_user,
            parent_guids=tuple(self.parent_guids or ()),
            file_formats=tuple(self.file_formats or ()),
        )


class HttpInfo(msgspec.Struct, frozen=True):
    """A share allocation answer (ars-api.md §5.6); only what the client reads.

    The MB figures are read as numbers of any kind (a float must not make an answer unreadable, which would
    hide its allocation status) and handed out as whole MB.
    """

    path: str | None = None
    allocated_storage_mb: float | None = None
    remaining_storage_mb: float | None = None
    total_storage_mb: float | None = None
    http_allocation_status: str | None = None
    allocation_status_text: str | None = None

    @property
    def total_mb(self) -> int | None:
        """``total_storage_mb`` (the share disk's size) in whole MB."""
        return None if self.total_storage_mb is None else int(self.total_storage_mb)

    @property
    def allocated_mb(self) -> int | None:
        """``allocated_storage_mb`` in whole MB."""
        return None if self.allocated_storage_mb is None else int(self.allocated_storage_mb)

    @property
    def remaining_mb(self) -> int | None:
        """``remaining_storage_mb`` in whole MB (rounded down)."""
        return None if self.remaining_storage_mb is None else int(self.remaining_storage_mb)


class Reply(HttpInfo, frozen=True):
    """Any JSON object ARS or the file proxy answers (lenient).

    An error envelope (``errorCode``/``errorMessage``), an asset carrying ``httpInfo``, a file-proxy share
    answer (an HttpInfo itself: its fields, inherited here, are at the top level), or an upload result.
    """

    error_code: str | None = msgspec.field(default=None, name="errorCode")
    error_message: str | None = msgspec.field(default=None, name="errorMessage")
    http_info: HttpInfo | None = msgspec.field(default=None, name="httpInfo")
    expected_crc: int | None = None
    actual_crc: int | None = None

    @property
    def share(self) -> HttpInfo | None:
        """The allocation part: ``httpInfo`` of an asset answer, or the answer itself for a share answer."""
        if self.http_info is not None:
            return self.http_info
        return self if self.http_allocation_status is not None else None

    @property
    def allocation_status(self) -> str | None:
        """``http_allocation_status`` when the answer carries one."""
        share = self.share
        return share.http_allocation_status if share else None


class TokenReply(msgspec.Struct, frozen=True):
    """Keycloak's answer to a client-credentials grant."""

    access_token: str
    expires_in: float = 300.0


class TokenErrorReply(msgspec.Struct, frozen=True):
    """Keycloak's OAuth2 error answer."""

    error: str = ""
    error_description: str = ""


class TokenClaims(msgspec.Struct, frozen=True):
    """The one JWT claim the client reads (the token is not verified: ARS does that)."""

    preferred_username: str | None = None
