"""File-proxy files: streamed uploads with CRC-32 check, listings and downloads (spec §4.2, §5.7)."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from integration.emulators.ars._assets import parse_query_int
from integration.emulators.ars._errors import bad_request, file_not_found
from integration.emulators.ars._model import Core, FileRow, Share
from integration.emulators.ars._shares import MB
from integration.emulators.ars._storage import safe_relative

__all__ = ["asset_files", "share_file", "share_listing", "upload"]

_CRC_FLIP = 0xFFFFFFFF


def _writeable_share(core: Core, institution: str, collection: str, guid: str) -> Share:
    share = core.shares.get(guid)
    if share is None:
        raise bad_request("There is no writeable directory for this asset")
    if (share.institution, share.collection) != (institution, collection):
        raise bad_request("Share directory doesnt exist")
    return share


def _check_upload(core: Core, where: tuple[str, str, str], path: str, crc: int, size_mb: int) -> tuple[Share, str]:
    """The upload rules of §4.2, before any byte is read; the share and the normalised path."""
    if size_mb == 0:
        raise bad_request("file_size_mb cannot be 0")
    if crc == 0:
        raise bad_request("crc cannot be 0")
    rel = safe_relative(path)
    if rel is None:
        raise bad_request("File path is not valid")
    if rel.split("/", 1)[0].startswith("parent"):
        raise bad_request("File path cannot start with 'parent'")
    share = _writeable_share(core, *where)
    replaced = share.files.get(rel)
    used = share.used_bytes - (replaced.size_bytes if replaced else 0)
    if used + size_mb * MB > share.allocation_mb * MB:
        raise bad_request("Total size of asset files exceeds allocated disk space")
    return share, rel


async def upload(
    core: Core,
    where: tuple[str, str, str],
    path: str,
    query: tuple[str | None, str | None],
    content_type: str | None,
    chunks: AsyncIterator[bytes],
) -> tuple[int, dict[str, Any]]:
    """``PUT /assetfiles/{i}/{c}/{guid}/{path}?crc=&file_size_mb=``: (200 | 507, FileUploadResult).

    ``where`` is (institution, collection, guid), ``query`` the raw (crc, file_size_mb). The body is streamed
    to a temporary file while its CRC-32 is computed; on mismatch it is discarded and nothing changes.
    """
    crc, size_mb = (parse_query_int(raw) or 0 for raw in query)
    share, rel = _check_upload(core, where, path, crc, size_mb)
    spool = core.storage.open_spool()
    try:
        async for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.discard()
        raise
    actual = spool.crc ^ _CRC_FLIP if core.take_fault("crc_corrupt_next") else spool.crc
    if actual != crc:
        spool.discard()
        core.counters.uploads_crc_mismatch += 1
        return 507, {"expected_crc": crc, "actual_crc": actual}
    if core.shares.get(share.guid) is not share:
        spool.discard()
        raise bad_request("There is no writeable directory for this asset")
    spool.commit(core.storage.share_dir(*where) / rel)
    mime = content_type or mimetypes.guess_type(rel)[0] or "application/octet-stream"
    row = FileRow(file_id=core.next_file_id(), rel=rel, size_bytes=spool.size, crc=actual, mime_type=mime)
    share.files[rel] = row
    synced = core.assets[share.guid].erda_files.get(rel)
    if synced is not None:
        synced.delete_after_sync = True
    core.counters.uploads_ok += 1
    return 200, {"expected_crc": crc, "actual_crc": actual}


def _dassco_file(guid: str, record: dict[str, Any], row: FileRow) -> dict[str, Any]:
    return {
        "fileId": row.file_id,
        "assetGuid": guid,
        "path": f"/{record['institution']}/{record['collection']}/{guid}/{row.rel}",
        "sizeBytes": row.size_bytes,
        "crc": row.crc,
        "deleteAfterSync": row.delete_after_sync,
        "syncStatus": row.sync_status,
        "mime_type": row.mime_type,
        "has_thumbnail": False,
    }


def asset_files(core: Core, guid: str) -> list[dict[str, Any]]:
    """``GET /assets/{guid}/files``: synced files, then files new in the open share (parents excluded)."""
    entry = core.assets.get(guid)
    if entry is None:
        return []
    rows = list(entry.erda_files.values())
    share = core.shares.get(guid)
    if share is not None:
        rows += [r for r in share.files.values() if r.sync_status == "NEW_FILE" and not r.rel.startswith("parents/")]
    return [_dassco_file(guid, entry.record, row) for row in rows]


def share_listing(core: Core, where: tuple[str, str, str], host: str) -> list[str]:
    """``GET /assetfiles/{i}/{c}/{guid}/``: URLs of every file in the open share, ``parents/…`` included.

    Built as the file proxy builds them, from the folder path: names are not percent-encoded (httpx encodes
    them when given the URL). No open share (or another institution / collection): an empty list, because the
    file proxy lists a folder that does not exist.
    """
    share = core.shares.get(where[2])
    if share is None or (share.institution, share.collection) != where[:2]:
        return []
    base = f"{core.settings.share_node_host or host}/file_proxy/api/assetfiles/{'/'.join(where)}"
    return [f"{base}/{rel}" for rel in share.files]


def share_file(core: Core, where: tuple[str, str, str], path: str) -> Path:
    """``GET /assetfiles/{i}/{c}/{guid}/{path}``: the file in the open share; 404 (FP envelope) if not there."""
    share = core.shares.get(where[2])
    rel = safe_relative(path)
    if share is None or rel is None or rel not in share.files or (share.institution, share.collection) != where[:2]:
        raise file_not_found(where, path)
    return core.storage.share_dir(*where) / rel
