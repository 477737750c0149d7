"""File-proxy deletes inside an open share: one file, a folder's content, or the whole share (spec §4.2).

``DELETE /assetfiles/{i}/{c}/{guid}/{path}`` is ``dassco-admin`` only since FP 2.7.4. A file new in the share
just goes (its row too, so ``GET /assets/{guid}/files`` stops listing it). A file that was synced before is
flagged ``deleteAfterSync``, and the next ERDA sync removes it from ERDA as well, because ERDA mirrors the share;
``deleteShare`` undoes the flags. ``parents/`` is never touched, nor is the share folder itself.
"""

from __future__ import annotations

from integration.emulators.ars._errors import bad_request, file_not_found
from integration.emulators.ars._model import Core, Share
from integration.emulators.ars._storage import safe_relative

__all__ = ["delete_in_share"]

_PARENTS = "parents/"


def _doomed(share: Share, rel: str) -> list[str]:
    """The share's own files (not ``parents/``) at ``rel``: the file, the folder's content, or all if ``""``."""
    prefix = f"{rel}/" if rel else ""
    return [name for name in share.files if not name.startswith(_PARENTS) and (name == rel or name.startswith(prefix))]


def delete_in_share(core: Core, where: tuple[str, str, str], path: str) -> None:
    """Delete ``path`` of the open share of ``where`` = (institution, collection, guid); see the module doc.

    400 "No writable directory was found for asset" without an open share; 400 for ``parents/…``; 404 (FP
    envelope) if nothing is there. An empty ``path`` empties the share and is never a 404.
    """
    share = core.shares.get(where[2])
    if share is None:
        raise bad_request("No writable directory was found for asset")
    rel = safe_relative(path) if path else ""
    if rel is None or (share.institution, share.collection) != where[:2]:
        raise file_not_found(where, path)
    if rel.split("/", 1)[0].startswith("parent"):
        raise bad_request("File path cannot start with 'parent'")
    doomed = _doomed(share, rel)
    if rel and not doomed:
        raise file_not_found(where, path)
    folder = core.storage.share_dir(*where)
    core.storage.delete_files(folder, doomed)
    if rel and doomed != [rel]:
        core.storage.remove(folder / rel)
    synced = core.assets[share.guid].erda_files
    for name in doomed:
        del share.files[name]
        if name in synced:
            synced[name].delete_after_sync = True
