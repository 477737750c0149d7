"""The ARS client: the E3 endpoints the integration uses, and what their answers mean for the caller."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx
import structlog
import trio

from integration import __version__
from integration.adapters.ars._errors import _map_httpx_errors, read_reply
from integration.adapters.ars._models import ArsFile, ArsStatistics, AssetStatus, CreatedAsset, Reply
from integration.adapters.ars._pool import ShardedTransport
from integration.adapters.ars._session import Outgoing, Session
from integration.config import ArsConfig, RetryConfig
from integration.domain import size_mb
from integration.errors import ArsConflict, ArsCrcMismatch, DataError, IntegrationError, MetadataError

__all__ = ["ArsClient", "open_ars_client"]

log = structlog.get_logger()

CHUNK_BYTES = 1024 * 1024  # upload bodies are streamed from disk in pieces of this size
_DEFAULT_POOL = 16  # connections when no limiter says otherwise


class ArsClient:
    """ARS (asset service + file proxy) over an injected ``httpx.AsyncClient``.

    Every call is bounded by ``ars.request_timeout_s`` (uploads: ``ars.upload_timeout_s``) and retried with
    back-off on transient failures. What the errors mean for the caller:

    * ``ArsUnavailable``: ARS or Keycloak stayed unreachable for ``retry.attempts`` tries: pause the ARS lane.
    * ``ArsDiskFull``: ARS has no room for the allocation: pause the lane, do not fail the asset.
    * ``ArsConflict``: the asset already exists / is being created: reconcile with ``get_status``.
    * ``ArsCrcMismatch``: ARS received other bytes than we hashed; nothing was stored.
    * ``ArsRejected``: ARS refused the request (4xx) or Keycloak refused the credentials: a human must look.
    * ``DataError`` (upload only): the local copy is missing or no longer has the recorded size.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        config: ArsConfig,
        secret: str,
        retry: RetryConfig,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        base = config.base_url.rstrip("/")
        self._health = f"{base}/ars/actuator/health"
        self._ars = f"{base}/ars/api/v1"
        self._fp = f"{base}/file_proxy/api"  # never httpInfo.hostname: that is deployment-internal
        self._upload_timeout_s = config.upload_timeout_s
        self._session = Session(http, config=config, secret=secret, retry=retry, limiter=limiter)

    async def create_asset(self, body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
        """Register the asset and open its share of ``allocation_mb`` MB.

        Creation is not idempotent in ARS, so a transient failure is never blindly retried: before posting
        again the status is asked, and an asset that now exists in ``METADATA_RECEIVED`` is taken as created
        by the lost attempt (``share_path`` then ``None``). One that exists in any other state raises
        ``ArsConflict``, as do ARS's "already exists" and "already being processed".
        """
        guid = str(body.get("asset_guid") or "")
        if not guid:
            raise MetadataError("the create body has no asset_guid")
        if allocation_mb <= 0:
            raise ValueError(f"allocation_mb must be > 0, got {allocation_mb} (ARS refuses 0, breaks on < 0)")

        async def attempt(number: int) -> CreatedAsset:
            if number > 1:
                existing = await self._status_once(guid)
                if existing is not None:
                    return _settle_lost_create(existing)
            return await self._post_asset(body, guid, allocation_mb)

        return await self._session.call("create_asset", guid, attempt)

    async def get_status(self, guid: str) -> AssetStatus | None:
        """The asset's ARS status, or ``None`` when ARS does not know the GUID."""
        return await self._session.call("get_status", guid, lambda _: self._status_once(guid))

    async def get_asset(self, guid: str) -> dict[str, Any] | None:
        """The full asset record as ARS holds it, or ``None`` when ARS does not know the GUID (204)."""

        async def attempt(_: int) -> dict[str, Any] | None:
            url = f"{self._ars}/assetmetadata/{_segment(guid)}"
            response = await self._session.send(Outgoing(method="GET", url=url, operation="get_asset", guid=guid))
            if response.status_code == 204:
                return None
            return self._session.decode(response, dict[str, Any], operation="get_asset", guid=guid)

        return await self._session.call("get_asset", guid, attempt)

    async def upload_file(
        self, *, institution: str, collection: str, guid: str, name: str, path: Path, crc32: int, size: int
    ) -> None:
        """PUT the local file ``path`` as ``name`` into the asset's open share, streamed from disk.

        Safe to retry (the same name overwrites). "There is no writeable directory" (no open share) raises
        ``ArsRejected``: the caller reconciles with ``get_status``.
        """
        segments = "/".join(_segment(part) for part in (institution, collection, guid, name))
        outgoing = Outgoing(
            method="PUT",
            url=f"{self._fp}/assetfiles/{segments}",
            operation="upload_file",
            guid=guid,
            params={"crc": crc32, "file_size_mb": size_mb(size)},
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            timeout_s=self._upload_timeout_s,
        )
        await self._session.call("upload_file", guid, lambda _: self._upload_once(outgoing, path, size, crc32))

    async def synchronize(self, guid: str, *, workstation: str, pipeline: str) -> None:
        """Close the share for uploads and queue the ERDA sync (then poll ``get_status``)."""
        outgoing = Outgoing(
            method="POST",
            url=f"{self._fp}/shares/assets/{_segment(guid)}/synchronize",
            operation="synchronize",
            guid=guid,
            params={"workstation": workstation, "pipeline": pipeline},
        )

        async def attempt(_: int) -> None:
            self._session.checked(await self._session.send(outgoing), operation="synchronize", guid=guid)

        await self._session.call("synchronize", guid, attempt)

    async def list_in_progress(self) -> list[AssetStatus]:
        """Every asset ARS has not finished (created, queued, failed sync) or that has an open share."""
        outgoing = Outgoing(
            method="GET",
            url=f"{self._ars}/assets/inprogress",
            operation="list_in_progress",
            params={"onlyFailed": "false"},
        )

        async def attempt(_: int) -> list[AssetStatus]:
            response = await self._session.send(outgoing)
            return self._session.decode(response, list[AssetStatus], operation="list_in_progress")

        return await self._session.call("list_in_progress", None, attempt)

    async def list_files(self, guid: str) -> list[ArsFile]:
        """The files ARS records for the asset, with their sizes, CRC-32s and ERDA sync status."""
        url = f"{self._fp}/assets/{_segment(guid)}/files"
        outgoing = Outgoing(method="GET", url=url, operation="list_files", guid=guid)

        async def attempt(_: int) -> list[ArsFile]:
            response = await self._session.send(outgoing)
            return self._session.decode(response, list[ArsFile], operation="list_files", guid=guid)

        return await self._session.call("list_files", guid, attempt)

    async def probe(self) -> bool:
        """True when a token can be had and ARS's health endpoint answers 2xx; one try, never raises."""
        try:
            response = await self._session.send(Outgoing(method="GET", url=self._health, operation="probe"))
        except IntegrationError:
            return False
        return response.is_success

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
        url = f"{self._ars}/assets/status/{_segment(guid)}"
        response = await self._session.send(Outgoing(method="GET", url=url, operation="get_status", guid=guid))
        if response.status_code == 404:
            return None
        return self._session.decode(response, AssetStatus, operation="get_status", guid=guid)

    async def _post_asset(self, body: dict[str, Any], guid: str, allocation_mb: int) -> CreatedAsset:
        outgoing = Outgoing(
            method="POST",
            url=f"{self._ars}/assetmetadata",
            operation="create_asset",
            guid=guid,
            params={"allocation_mb": allocation_mb},
            json=body,
        )
        reply = self._session.decode(await self._session.send(outgoing), Reply, operation="create_asset", guid=guid)
        info = reply.http_info
        allocated = info.allocated_storage_mb if info and info.allocated_storage_mb is not None else allocation_mb
        return CreatedAsset(guid=guid, share_path=info.path if info else None, allocated_mb=allocated)

    async def _upload_once(self, outgoing: Outgoing, path: Path, size: int, crc32: int) -> None:
        guid = outgoing.guid
        with _map_httpx_errors(operation="upload_file", guid=guid):
            file = await trio.to_thread.run_sync(_open_binary, path)
            with file:
                found = os.fstat(file.fileno()).st_size
                if found != size:
                    raise DataError(f"local copy {path} has {found} bytes, {size} were recorded", guid=guid)
                response = await self._session.send(replace(outgoing, content=lambda: _Chunks(file, size)))
        self._session.checked(response, operation="upload_file", guid=guid)
        reply = read_reply(response.content)  # {"expected_crc", "actual_crc"}; tolerated when absent
        if reply is not None and reply.actual_crc is not None and reply.actual_crc != crc32:
            raise ArsCrcMismatch(
                f"ARS upload_file: CRC-32 mismatch (expected {crc32}, ARS computed {reply.actual_crc})",
                status_code=response.status_code,
                guid=guid,
            )


class _Chunks(httpx.AsyncByteStream):
    """The upload body: ``size`` bytes of ``file`` from its start, ``CHUNK_BYTES`` at a time.

    Each chunk is one ``os.pread`` in a worker thread (no shared file position, so a resend after a 401 simply
    starts again at offset 0, and a file of one chunk costs one thread hop). Its own iterator rather than an
    async generator, so an upload cut short by a timeout leaves nothing half-run behind; the file itself is
    closed by :meth:`ArsClient._upload_once`.
    """

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._fd = file.fileno()
        self._size = size
        self._offset = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        wanted = min(CHUNK_BYTES, self._size - self._offset)
        if wanted <= 0:
            raise StopAsyncIteration
        chunk = await trio.to_thread.run_sync(os.pread, self._fd, wanted, self._offset)
        if not chunk:  # the file shrank after its size was checked: the short body fails the request
            raise StopAsyncIteration
        self._offset += len(chunk)
        return chunk


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def _settle_lost_create(existing: AssetStatus) -> CreatedAsset:
    guid = existing.asset_guid
    if existing.status != "METADATA_RECEIVED":
        raise ArsConflict(
            f"asset {guid} already exists in ARS with status {existing.status}",
            status_code=409,
            error_message=f"Asset {guid} already exists",
            guid=guid,
        )
    log.info("ars_create_reconciled", guid=guid, share_allocation_mb=existing.share_allocation_mb)
    return CreatedAsset(guid=guid, share_path=None, allocated_mb=existing.share_allocation_mb or 0)


def _segment(text: str) -> str:
    """One URL path segment: institution names have spaces, and nothing may add a path level."""
    return quote(text, safe="")


@asynccontextmanager
async def open_ars_client(
    config: ArsConfig,
    retry: RetryConfig,
    *,
    secret: str,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: trio.CapacityLimiter | None = None,
) -> AsyncIterator[ArsClient]:
    """An :class:`ArsClient` owning its connection pool (as many connections as ``limiter`` allows)."""
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
