"""The ARS client: the E3 endpoints the integration uses, and what their answers mean for the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio

from integration import __version__
from integration.adapters.ars import _shares
from integration.adapters.ars._models import (
    ArsAsset,
    ArsFile,
    ArsStatistics,
    AssetStatus,
    AssetWire,
    CreatedAsset,
    Reply,
    ShareInfo,
)
from integration.adapters.ars._pool import ShardedTransport
from integration.adapters.ars._session import Outgoing, Session
from integration.adapters.ars._shares import segment
from integration.adapters.ars._token import SecretProvider, claimed_username
from integration.adapters.ars._upload import upload_once
from integration.config import ArsConfig, RetryConfig
from integration.domain import size_mb
from integration.errors import ArsConflict, IntegrationError, MetadataError

__all__ = ["ArsClient", "open_ars_client"]

log = structlog.get_logger()

_DEFAULT_POOL = 16  # connections when no limiter says otherwise
#: A GUID no real asset has: ``check`` lists its files to prove the file proxy answers.
_CHECK_GUID = "integration-check-no-such-asset"


class ArsClient:
    """ARS (asset service + file proxy) over an injected ``httpx.AsyncClient``.

    Every call is bounded by ``ars.request_timeout_s`` (uploads: ``ars.upload_timeout_s``) and retried with
    back-off on transient failures. What the errors mean for the caller (one table, ``_classify.RULES``,
    decides which answer is which, printed by ``describe_classification()``; its question is "would the next
    asset get the same answer?"):

    Site: pause the ARS lane with the error's ``reason`` (a human can act on it); retrying the asset cannot help.

    * ``ArsUnavailable``: ARS or Keycloak stayed unreachable (5xx, 429, timeouts, refused connections) for
      ``retry.attempts`` tries.
    * ``ArsCredentialsRefused``: Keycloak refused the client id/secret, the secret cannot be read, or ARS
      refused a token Keycloak just issued. ``restart_needed`` when the secret is not re-read (environment).
    * ``ArsForbidden``: ARS refuses this client a role or right every asset needs (a bare 403, "FORBIDDEN").
    * ``ArsRouteNotFound``: 404 (or a redirect) on a path every ARS has: ``ars.base_url``/``ars.token_url`` wrong.
    * ``ArsDiskFull``: the share disk has (almost) no room: parked assets probe it with their own retry.

    Group: ``GroupHeld`` (a workstation out of service, an unknown collection, institution, pipeline or file
    format): hold the assets of ``group_kind`` (value ``group_value``, or the asset's own when ``None``).

    Asset:

    * ``AssetWaits``: this asset must wait ``retry_after_s`` (a de-dup window, a sync in progress, too big for
      the free space); the wait does not count against its retries.
    * ``ArsCrcMismatch``: ARS received other bytes than we hashed; nothing was stored: upload again after a
      back-off, quarantine only when it persists.
    * ``ArsConflict``: ``kind`` ``exists`` / ``being_processed`` / ``checked_out``: reconcile with
      ``get_status``, never create twice.
    * ``ArsRejected``: ARS refused this asset's own data: quarantine with the message.
    * ``DataError`` (upload only): the local copy is missing or no longer has the recorded size.

    ``ArsRouteNotFound`` also for a URL httpx cannot use at all; ``ValueError``: a caller's mistake (a non-positive
    allocation, a body naming another GUID), raised before anything is sent.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        config: ArsConfig,
        secret: str | SecretProvider,
        retry: RetryConfig,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        base = config.base_url.rstrip("/")
        self._client_id = config.client_id
        self._health = f"{base}/ars/actuator/health"
        self._ars = f"{base}/ars/api/v1"
        self._fp = f"{base}/file_proxy/api"  # never httpInfo.hostname: that is deployment-internal
        self._upload_timeout_s = config.upload_timeout_s
        self._session = Session(http, config=config, secret=secret, retry=retry, limiter=limiter)

    # --- start-up and identity -------------------------------------------------------------------------------

    async def check(self) -> None:
        """Prove that this configuration works: a FRESH token (the secret re-read), ARS and the file proxy.

        Asks Keycloak for a new token, ``GET {ars}/v1/institutions`` (a JSON list) and the file list of a GUID
        that cannot exist (200 and a JSON list). Used at start-up and to probe a paused ARS lane. Raises
        ``ArsCredentialsRefused``, ``ArsRouteNotFound``, ``ArsForbidden`` or (after the retries)
        ``ArsUnavailable``, each with a reason a human can act on; returns when everything answered.
        """
        await self._session.call("token", None, lambda _: self._session.tokens.fresh())
        institutions = Outgoing(method="GET", url=f"{self._ars}/institutions", operation="list_institutions")
        await self._session.fetch(institutions, list[Any])
        files = Outgoing(method="GET", url=f"{self._fp}/assets/{segment(_CHECK_GUID)}/files", operation="list_files")
        await self._session.fetch(files, list[Any])

    async def username(self) -> str:
        """The user ARS records for this client ("the creating user"): the token's ``preferred_username``.

        Falls back to ``service-account-<client_id>`` (Keycloak's name for a client-credentials account) when
        the token is not a JWT. Raises what getting a token raises (``ArsCredentialsRefused``,
        ``ArsRouteNotFound``, ``ArsUnavailable``).
        """
        token = await self._session.call("username", None, lambda _: self._session.tokens.get())
        return claimed_username(token) or f"service-account-{self._client_id}"

    async def probe(self) -> bool:
        """True when a token can be had and ARS's health endpoint answers 2xx; one try, never raises.

        Kept for diagnostics; the daemon uses :meth:`check`, which says *why* ARS cannot be used.
        """
        try:
            response = await self._session.send(Outgoing(method="GET", url=self._health, operation="probe"))
        except IntegrationError:
            return False
        return response.is_success

    # --- asset records ---------------------------------------------------------------------------------------

    async def create_asset(self, body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
        """Register the asset and open its share of ``allocation_mb`` MB.

        Creation is not idempotent in ARS, so a transient failure is never blindly retried: before posting
        again the status is asked, and an asset that now exists in ``METADATA_RECEIVED`` is taken as created
        by the lost attempt (``share_path`` then ``None``). One that exists in any other state raises
        ``ArsConflict(kind="exists")``, as does ARS's 400 "already exists"; its 403 "already being processed"
        raises ``ArsConflict(kind="being_processed")`` (wait out ARS's de-dup window, then ask the status).
        DISK_FULL raises ``ArsDiskFull`` or ``AssetWaits``; an unknown workstation, collection, ... ``GroupHeld``.
        """
        guid = str(body.get("asset_guid") or "")
        if not guid:
            raise MetadataError("the create body has no asset_guid")
        if allocation_mb <= 0:
            raise ValueError(f"allocation_mb must be > 0, got {allocation_mb} (ARS refuses 0, breaks on < 0)")
        institution, collection = body.get("institution"), body.get("collection")
        outgoing = Outgoing(
            method="POST",
            url=f"{self._ars}/assetmetadata",
            operation="create_asset",
            guid=guid,
            params={"allocation_mb": allocation_mb},
            json=body,
            target=f"{institution}/{collection}",
            requested_mb=allocation_mb,
        )

        async def attempt(number: int) -> CreatedAsset:
            if number > 1:
                existing = await self._status_once(guid)
                if existing is not None:
                    return _settle_lost_create(existing)
            reply = self._session.decode(await self._session.send(outgoing), Reply, outgoing)
            info = reply.share
            allocated = info.allocated_mb if info and info.allocated_mb is not None else allocation_mb
            return CreatedAsset(guid=guid, share_path=info.path if info else None, allocated_mb=allocated)

        return await self._session.call("create_asset", guid, attempt)

    async def get_status(self, guid: str) -> AssetStatus | None:
        """The asset's ARS status, or ``None`` when ARS does not know the GUID (404 with an empty body).

        A 404 with any other body (a proxy's page) raises ``ArsRouteNotFound``: ``ars.base_url`` is wrong.
        """
        return await self._session.call("get_status", guid, lambda _: self._status_once(guid))

    async def get_asset(self, guid: str) -> ArsAsset | None:
        """The asset record as ARS holds it (what the integration reads of it), or ``None`` (204: unknown GUID).

        ``created_by`` says which user created it: compare with :meth:`username` to tell our own asset from
        someone else's. Raises the site errors, or ``ArsRejected`` when ARS refuses to show it (data rights).
        """
        url = f"{self._ars}/assetmetadata/{segment(guid)}"
        wire = await self._session.fetch_optional(
            Outgoing(method="GET", url=url, operation="get_asset", guid=guid), AssetWire
        )
        return wire.typed() if wire is not None else None

    async def update_asset(self, guid: str, body: dict[str, Any]) -> None:
        """Replace the asset's metadata with ``body`` (``PUT``: a FULL record, absent fields are cleared, §3.1.2).

        Safe to retry. Raises ``AssetWaits`` while ARS syncs the asset to Specify, ``GroupHeld`` for an unknown
        pipeline/workstation, ``ArsRejected`` for a refusal of the data; ``ValueError`` when ``body`` names
        another GUID.
        """
        if body.get("asset_guid") != guid:
            raise ValueError(f"the body's asset_guid {body.get('asset_guid')!r} is not {guid!r}")
        url = f"{self._ars}/assetmetadata/{segment(guid)}"
        target = f"{body.get('institution')}/{body.get('collection')}"
        outgoing = Outgoing(method="PUT", url=url, operation="update_asset", guid=guid, json=body, target=target)
        await self._session.perform(outgoing)

    async def get_asset_document(self, guid: str) -> dict[str, Any] | None:
        """The asset record exactly as ARS returns it (for a fetch-merge-put), or ``None`` (204: unknown GUID)."""
        url = f"{self._ars}/assetmetadata/{segment(guid)}"
        outgoing = Outgoing(method="GET", url=url, operation="get_asset", guid=guid)
        return await self._session.fetch_optional(outgoing, dict[str, Any])

    async def list_events(self, guid: str) -> list[dict[str, Any]]:
        """The asset's events (``GET /assetmetadata/{guid}/events``: who changed it, when, with which pipeline)."""
        url = f"{self._ars}/assetmetadata/{segment(guid)}/events"
        outgoing = Outgoing(method="GET", url=url, operation="list_events", guid=guid)
        return await self._session.fetch(outgoing, list[dict[str, Any]])

    def _specimen_url(self, institution: str, collection: str, barcode: str) -> str:
        path = "/".join(segment(part) for part in (institution, "collections", collection, "specimen", barcode))
        return f"{self._ars}/institutions/{path}"

    async def get_specimen(self, *, institution: str, collection: str, barcode: str) -> dict[str, Any] | None:
        """The specimen ``barcode`` of the collection as ARS holds it, or ``None`` when there is none (404)."""
        url = self._specimen_url(institution, collection, barcode)
        outgoing = Outgoing(method="GET", url=url, operation="get_specimen", target=f"{institution}/{collection}")

        async def attempt(_: int) -> dict[str, Any] | None:
            response = await self._session.send(outgoing)
            if response.status_code == 404:
                return None
            return self._session.decode(response, dict[str, Any], outgoing)

        return await self._session.call("get_specimen", None, attempt)

    async def put_specimen(
        self,
        *,
        institution: str,
        collection: str,
        barcode: str,
        preparation_types: list[str],
        keep: dict[str, Any] | None = None,
    ) -> None:
        """Create or update the specimen ``barcode`` of the collection with exactly ``preparation_types`` (E3: it
        must exist before an asset names it in ``asset_specimen``). An update replaces what it is sent: pass the
        types it has too, and in ``keep`` its ``specimen_pid`` and ``role_restrictions``. Safe to repeat."""
        body = {**(keep or {}), "institution": institution, "collection": collection, "barcode": barcode,
                "preparation_types": preparation_types}  # fmt: skip
        outgoing = Outgoing(method="PUT", url=self._specimen_url(institution, collection, barcode),
                            operation="put_specimen", json=body, target=f"{institution}/{collection}")  # fmt: skip
        await self._session.perform(outgoing)

    async def list_in_progress(self) -> list[AssetStatus]:
        """Every asset ARS has not finished (created, queued, failed sync) or that has an open share."""
        outgoing = Outgoing(
            method="GET",
            url=f"{self._ars}/assets/inprogress",
            operation="list_in_progress",
            params={"onlyFailed": "false"},
        )
        return await self._session.fetch(outgoing, list[AssetStatus])

    # --- files and shares ------------------------------------------------------------------------------------

    def file_url(self, *, institution: str, collection: str, guid: str, name: str) -> str:
        """The URL of ``name`` in the asset's share (download with GET, upload with PUT; needs an ARS token)."""
        segments = "/".join(segment(part) for part in (institution, collection, guid, name))
        return f"{self._fp}/assetfiles/{segments}"

    async def upload_file(
        self, *, institution: str, collection: str, guid: str, name: str, path: Path, crc32: int, size: int
    ) -> None:
        """PUT the local file ``path`` as ``name`` into the asset's open share, streamed from disk.

        Safe to retry (the same name overwrites). ``ArsCrcMismatch`` is NOT retried here: the asset actor
        uploads again after a back-off. "There is no writeable directory" (no open share) raises
        ``ArsRejected``: the caller reconciles with ``get_status``. ``DataError``: the local copy changed.
        """
        outgoing = Outgoing(
            method="PUT",
            url=self.file_url(institution=institution, collection=collection, guid=guid, name=name),
            operation="upload_file",
            guid=guid,
            params={"crc": crc32, "file_size_mb": size_mb(size)},
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            timeout_s=self._upload_timeout_s,
            target=f"{institution}/{collection}",
        )
        await self._session.call("upload_file", guid, lambda _: upload_once(self._session, outgoing, path, size, crc32))

    async def synchronize(self, guid: str, *, workstation: str, pipeline: str) -> None:
        """Close the share for uploads and queue the ERDA sync (then poll ``get_status``).

        Raises ``AssetWaits`` while a large-file upload is active, ``ArsRejected`` when no share is open.
        """
        outgoing = Outgoing(
            method="POST",
            url=f"{self._fp}/shares/assets/{segment(guid)}/synchronize",
            operation="synchronize",
            guid=guid,
            params={"workstation": workstation, "pipeline": pipeline},
        )
        await self._session.perform(outgoing)

    async def list_files(self, guid: str) -> list[ArsFile]:
        """The files ARS records for the asset, with their sizes, CRC-32s and ERDA sync status."""
        url = f"{self._fp}/assets/{segment(guid)}/files"
        return await self._session.fetch(
            Outgoing(method="GET", url=url, operation="list_files", guid=guid), list[ArsFile]
        )

    async def open_share(self, guid: str, *, institution: str, collection: str, allocation_mb: int) -> ShareInfo:
        """Open (re-open) a share of ``allocation_mb`` MB for an existing asset, for :meth:`username`.

        The file proxy copies the asset's synced files (and a derivative's parents) into it. After a lost
        answer the status is asked before posting again, and an open share is taken as opened by the lost
        attempt. Raises ``ArsConflict(kind="checked_out")`` (a share is open already: reconcile),
        ``AssetWaits`` (the file proxy's 5-minute creation de-dup; DISK_FULL while there is room for smaller
        assets), ``ArsDiskFull`` (no room at all), ``ArsRejected`` (e.g. the allocation is smaller than the
        files already there, the asset is locked).
        """
        if allocation_mb <= 0:
            raise ValueError(f"allocation_mb must be > 0, got {allocation_mb}")
        return await _shares.open_share(
            self._session,
            self._fp,
            self._status_once,
            guid=guid,
            institution=institution,
            collection=collection,
            allocation_mb=allocation_mb,
            user=await self.username(),
        )

    async def delete_share(self, guid: str) -> bool:
        """Close the asset's share WITHOUT syncing (its new files are discarded; ERDA is untouched).

        True when a share was deleted, False when none was open (also after a lost answer to our own delete).
        Raises ``AssetWaits`` while the share is queued for ERDA sync ("Share is synchronizing").
        """
        return await _shares.delete_share(self._session, self._fp, guid)

    async def delete_file(self, *, institution: str, collection: str, guid: str, name: str) -> bool:
        """Delete ``name`` from the asset's open share: True deleted, False when the share has no such file.

        Since file proxy 2.7.4 only ``dassco-admin`` may delete files: its 403 raises ``ArsRejected`` saying so
        (asset scope: re-open the asset's share with another plan, or have an admin delete the file).
        """
        return await _shares.delete_file(
            self._session, self._fp, institution=institution, collection=collection, guid=guid, name=name
        )

    async def list_share(self, *, institution: str, collection: str, guid: str) -> list[str]:
        """The names of the files in the asset's open share (a derivative's ``parents/...`` left out).

        Empty when no share is open (the file proxy lists a folder that does not exist: ask ``get_status`` to
        tell "no share" from "empty share"); a 404 NOT_FOUND answer raises ``ArsRejected``.
        """
        return await _shares.list_share(
            self._session, self._fp, institution=institution, collection=collection, guid=guid
        )

    def statistics(self) -> ArsStatistics:
        """Counters since this client was made."""
        session = self._session
        return ArsStatistics(
            requests=session.requests,
            retries=session.retries,
            token_fetches=session.tokens.fetches,
            failures=session.failures,
        )

    async def _status_once(self, guid: str) -> AssetStatus | None:
        url = f"{self._ars}/assets/status/{segment(guid)}"
        outgoing = Outgoing(method="GET", url=url, operation="get_status", guid=guid)
        response = await self._session.send(outgoing)
        if self._session.absent(response, outgoing):
            return None
        return self._session.decode(response, AssetStatus, outgoing)


def _settle_lost_create(existing: AssetStatus) -> CreatedAsset:
    guid = existing.asset_guid
    if existing.status != "METADATA_RECEIVED":
        raise ArsConflict(
            f"asset {guid} already exists in ARS with status {existing.status}",
            status_code=409,
            error_message=f"Asset {guid} already exists",
            guid=guid,
            kind="exists",
        )
    log.info("ars_create_reconciled", guid=guid, share_allocation_mb=existing.share_allocation_mb)
    return CreatedAsset(guid=guid, share_path=None, allocated_mb=existing.share_allocation_mb or 0)


@asynccontextmanager
async def open_ars_client(
    config: ArsConfig,
    retry: RetryConfig,
    *,
    secret: str | SecretProvider,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: trio.CapacityLimiter | None = None,
) -> AsyncIterator[ArsClient]:
    """An :class:`ArsClient` owning its connection pool (as many connections as ``limiter`` allows).

    ``secret`` is the client secret, or better a provider asked on every token request (the daemon passes
    ``config.ars.resolve_secret``, which re-reads ``ars.client_secret_file``, so fixing the file is enough).
    """
    pool = _DEFAULT_POOL
    if limiter is not None and limiter.total_tokens != float("inf"):
        pool = max(1, int(limiter.total_tokens))
    async with httpx.AsyncClient(
        transport=transport if transport is not None else ShardedTransport(connections=pool),
        timeout=httpx.Timeout(config.request_timeout_s),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        headers={"User-Agent": f"dassco-integration/{__version__}"},
    ) as http:
        yield ArsClient(http, config=config, secret=secret, retry=retry, limiter=limiter)
