"""The file proxy's share (work directory) endpoints: open, list, delete a file, delete the share (§4.1, §4.2).

Each function is one :class:`~integration.adapters.ars.ArsClient` operation; the client documents what it
raises. The share's URL is always built from the configured file-proxy base, never from ``httpInfo.hostname``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog

from integration.adapters.ars._models import AssetStatus, Reply, ShareInfo
from integration.adapters.ars._session import Outgoing, Session

#: Asks ARS for one asset's status once (no retries of its own): ``None`` when ARS does not know it.
StatusOnce = Callable[[str], Awaitable[AssetStatus | None]]

__all__ = ["StatusOnce", "delete_file", "delete_share", "list_share", "open_share", "segment", "share_path"]

log = structlog.get_logger()

_PARENTS = "parents/"  # parent files a derivative's share holds read-only (E3)


def segment(text: str) -> str:
    """One URL path segment: institution names have spaces, and nothing may add a path level."""
    return quote(text, safe="")


def share_path(institution: str, collection: str, guid: str) -> str:
    """The share's path as the file proxy names it: ``/assetfiles/{institution}/{collection}/{guid}/``."""
    return f"/assetfiles/{institution}/{collection}/{guid}/"


async def open_share(
    session: Session,
    fp: str,
    status_once: StatusOnce,
    *,
    guid: str,
    institution: str,
    collection: str,
    allocation_mb: int,
    user: str,
) -> ShareInfo:
    """``POST /shares/assets/{guid}/createShare``; after a lost answer the status says whether it opened."""
    outgoing = Outgoing(
        method="POST",
        url=f"{fp}/shares/assets/{segment(guid)}/createShare",
        operation="open_share",
        guid=guid,
        target=f"{institution}/{collection}",
        requested_mb=allocation_mb,
        json={
            "assets": [{"asset_guid": guid, "institution": institution, "collection": collection}],
            "users": [user],
            "allocation_mb": allocation_mb,
        },
    )
    where = share_path(institution, collection, guid)

    async def attempt(number: int) -> ShareInfo:
        if number > 1:  # createShare is not idempotent: did the lost attempt open it?
            existing = await status_once(guid)
            if existing is not None and existing.share_allocation_mb is not None:
                log.info("ars_open_share_reconciled", guid=guid, share_allocation_mb=existing.share_allocation_mb)
                return ShareInfo(path=where, allocated_mb=existing.share_allocation_mb)
        reply = session.decode(await session.send(outgoing), Reply, outgoing)
        share = reply.share
        path = share.path if share is not None and share.path else where
        allocated = share.allocated_mb if share is not None else None
        return ShareInfo(path=path, allocated_mb=allocation_mb if allocated is None else allocated)

    return await session.call("open_share", guid, attempt)


async def delete_share(session: Session, fp: str, guid: str) -> bool:
    """``DELETE /shares/assets/{guid}/deleteShare``: True deleted, False when no share was open."""
    url = f"{fp}/shares/assets/{segment(guid)}/deleteShare"
    return await session.perform(Outgoing(method="DELETE", url=url, operation="delete_share", guid=guid))


async def delete_file(session: Session, fp: str, *, institution: str, collection: str, guid: str, name: str) -> bool:
    """``DELETE /assetfiles/{i}/{c}/{guid}/{name}``: True deleted, False when the share has no such file."""
    segments = "/".join(segment(part) for part in (institution, collection, guid, name))
    outgoing = Outgoing(
        method="DELETE",
        url=f"{fp}/assetfiles/{segments}",
        operation="delete_file",
        guid=guid,
        target=f"{institution}/{collection}",
    )
    return await session.perform(outgoing)


async def list_share(session: Session, fp: str, *, institution: str, collection: str, guid: str) -> list[str]:
    """``GET /assetfiles/{i}/{c}/{guid}/``: the names of the asset's own files in its open share."""
    segments = "/".join(segment(part) for part in (institution, collection, guid))
    outgoing = Outgoing(
        method="GET",
        url=f"{fp}/assetfiles/{segments}/",
        operation="list_share",
        guid=guid,
        target=f"{institution}/{collection}",
    )
    urls = await session.fetch(outgoing, list[str])
    names = (_name_in_share(url, guid) for url in urls)
    return [name for name in names if name and not name.startswith(_PARENTS)]


def _name_in_share(url: str, guid: str) -> str:
    """``{host}/file_proxy/api/assetfiles/{i}/{c}/{guid}/{name}`` -> ``name`` (may hold ``/``)."""
    _, found, name = url.partition(f"/{guid}/")
    return name if found else url.rsplit("/", 1)[-1]
