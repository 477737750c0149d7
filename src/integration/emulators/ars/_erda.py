"""The asynchronous ERDA sync job of the file proxy (spec §4.1, §7.1 step 5, §7.3).

One :func:`erda_tick` processes every queued share once: it mirrors the share into the asset's ERDA folder,
marks the files ``SYNCHRONIZED``, completes the asset and closes the share. ``erda_fail_next`` makes jobs fail;
after ``max_erda_attempts`` failed jobs the asset is ``ERDA_FAILED`` and the share stays until re-synchronised
or deleted. ``stuck_asset_received`` makes the job skip everything.
"""

from __future__ import annotations

import msgspec
import structlog

from integration.emulators.ars._model import Core, FileRow, Share, now_iso
from integration.emulators.ars._records import event
from integration.emulators.ars._shares import drop_share

__all__ = ["TickResult", "erda_tick"]

log = structlog.get_logger()


class TickResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one tick did."""

    processed: int = 0
    """Queued shares looked at."""
    synced: int = 0
    failed: int = 0
    """Jobs that failed (the asset turns ``ERDA_FAILED`` only on the last allowed attempt)."""


def erda_tick(core: Core) -> TickResult:
    """Run the sync job once over every queued share."""
    if core.faults.stuck_asset_received or not core.queue:
        return TickResult()
    synced = failed = 0
    guids = list(core.queue)
    for guid in guids:
        share = core.shares[guid]
        share.attempts += 1
        if core.take_fault("erda_fail_next"):
            _fail(core, share)
            failed += 1
        else:
            _sync(core, share)
            synced += 1
    return TickResult(processed=len(guids), synced=synced, failed=failed)


def _fail(core: Core, share: Share) -> None:
    core.counters.erda_sync_failures += 1
    if share.attempts < core.settings.max_erda_attempts:
        return
    share.state = "FAILED"
    core.queue.pop(share.guid, None)
    record = core.assets[share.guid].record
    record["error_message"] = (
        f"Failed to synchronise asset {share.guid} to ERDA after {share.attempts} attempts (emulated fault)"
    )
    record["error_timestamp"] = now_iso()
    core.set_status(share.guid, "ERDA_FAILED")
    log.debug("ars_emulator_erda_failed", asset_guid=share.guid, attempts=share.attempts)


def _changes(old: dict[str, FileRow], new: dict[str, FileRow], dropped: list[str]) -> list[str]:
    changes = {
        "FILE_ADDED" if rel not in old else "FILE_UPDATED" for rel, row in new.items() if row.sync_status == "NEW_FILE"
    }
    if dropped:
        changes.add("FILE_DELETED")
    return sorted(changes)


def _sync(core: Core, share: Share) -> None:
    entry = core.assets[share.guid]
    own = {rel: row for rel, row in share.files.items() if not rel.startswith("parents/")}
    dropped = [rel for rel in entry.erda_files if rel not in own]
    core.storage.mirror(
        core.storage.share_dir(share.institution, share.collection, share.guid),
        core.storage.erda_dir(share.institution, share.collection, share.guid),
        list(own),
        dropped,
    )
    changes = _changes(entry.erda_files, own, dropped)
    entry.erda_files = {
        rel: msgspec.structs.replace(row, sync_status="SYNCHRONIZED", delete_after_sync=False)
        for rel, row in own.items()
    }
    drop_share(core, share)
    record, now = entry.record, now_iso()
    record["error_message"] = record["error_timestamp"] = None
    name = "UPDATE_ASSET" if entry.synced_once else "CREATE_ASSET"
    entry.events.append(event(name, record["updateUser"], now, record["pipeline"], changes or None))
    entry.synced_once = True
    core.set_status(share.guid, "COMPLETED" if core.settings.legacy_completed_status else "ERDA_SYNCHRONISED")
    core.counters.erda_synced += 1
