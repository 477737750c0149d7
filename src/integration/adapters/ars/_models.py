"""What ARS and its file proxy answer, as msgspec Structs: the public records and the private wire shapes."""

from __future__ import annotations

import msgspec

__all__ = ["ArsFile", "ArsStatistics", "AssetStatus", "CreatedAsset"]

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
    """A file ARS knows for an asset (``GET /file_proxy/api/assets/{guid}/files``); ``crc`` is unsigned CRC-32."""

    path: str
    size_bytes: int = msgspec.field(name="sizeBytes")
    crc: int
    sync_status: str = msgspec.field(name="syncStatus")


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


class HttpInfo(msgspec.Struct, frozen=True):
    """The share part of a create answer (ars-api.md §5.6); only what the client reads."""

    path: str | None = None
    allocated_storage_mb: int | None = None
    http_allocation_status: str | None = None
    allocation_status_text: str | None = None


class Reply(msgspec.Struct, frozen=True):
    """Any JSON object ARS or the file proxy answers: error envelope, asset, upload result (lenient)."""

    error_code: str | None = msgspec.field(default=None, name="errorCode")
    error_message: str | None = msgspec.field(default=None, name="errorMessage")
    http_info: HttpInfo | None = msgspec.field(default=None, name="httpInfo")
    expected_crc: int | None = None
    actual_crc: int | None = None

    @property
    def allocation_status(self) -> str | None:
        """``httpInfo.http_allocation_status`` when the answer carries one."""
        return self.http_info.http_allocation_status if self.http_info else None


class TokenReply(msgspec.Struct, frozen=True):
    """Keycloak's answer to a client-credentials grant."""

    access_token: str
    expires_in: float = 300.0


class TokenErrorReply(msgspec.Struct, frozen=True):
    """Keycloak's OAuth2 error answer."""

    error: str = ""
    error_description: str = ""
