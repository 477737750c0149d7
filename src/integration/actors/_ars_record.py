"""One full-record update of an ARS asset: fetch, merge, put, re-read, compare (ars-api §3.1.2).

ARS has no ETags and its PUT replaces the whole record (absent fields are cleared), so a write is built from
ARS's own current record (its client-writable fields) with only what we own set on it (:class:`Wanted`). Then:

* Nothing missing from the current record: nothing is written (a repeated step writes nothing twice).
* The specimens we attach are created first (E3: ``asset_specimen`` names existing specimens).
* After the PUT the record is read again. If something we wrote is missing, another writer's PUT landed after
  ours: the merge runs again from the new record (``MERGE_ROUNDS`` times, then a transient error and a back-off).
* ARS's update events are compared between our read and our re-read. A metadata update by someone else that is
  not after ours happened between our read and our PUT: our PUT replaced what it changed, and ARS gives no way to
  see what that was. That race is written down as a note on the asset (``ars_race``) with who and when, for a
  person to compare the record's history.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from integration.actors._deps import AssetDeps
from integration.errors import ArsRejected, DataError, GroupHeld, TransientError
from integration.store import AssetRecord

__all__ = ["MERGE_ROUNDS", "METADATA_EVENTS", "WRITABLE_FIELDS", "Wanted", "update_record"]

log = structlog.get_logger()

ACTOR = "asset"
MERGE_ROUNDS = 3
#: Events that record a change of the metadata record (ars-api §6.3).
METADATA_EVENTS = frozenset({"UPDATE_ASSET_METADATA", "BULK_UPDATE_ASSET_METADATA"})
#: The client-writable fields of an E3 asset (ars-api §5.1): only these are sent back, as ARS holds them.
WRITABLE_FIELDS = frozenset({
    "asset_guid", "asset_pid", "status", "institution", "collection", "pipeline", "workstation", "digitiser",
    "updating_pipeline", "parent_guids", "asset_specimen", "funding", "asset_subject", "payload_type", "file_formats",
    "asset_locked", "restricted_access", "role_restrictions", "tags", "date_asset_taken", "date_asset_finalised",
    "date_metadata_ingested", "camera_setting_control", "metadata_version", "metadata_source", "mos_id",
    "specify_attachment_title", "specify_attachment_remarks", "make_public", "push_to_specify",
    "complete_digitiser_list", "issues", "legality", "external_publishers",
})  # fmt: skip


class Wanted(msgspec.Struct, frozen=True, kw_only=True):
    """What one update owns on a record; everything else is kept as ARS holds it."""

    specimens: tuple[str, ...] = ()  # barcodes to be attached (in the record's institution and collection)
    tags: dict[str, str] = {}  # tags to set (other tags kept)
    fields: dict[str, str] = {}  # top-level fields to set
    fields_if_empty: dict[str, str] = {}  # top-level fields to set only when the record has none (a curator's stays)
    ours_if: dict[str, str] = {}  # field -> a regular expression: a value matching it was written by us, replaceable
    drop_tags: tuple[str, ...] = ()  # tags of ours that no longer apply (a later result says otherwise)


def _same(held: Any, value: str) -> bool:
    return str(held if held is not None else "").strip().lower() == value.strip().lower()


def _attached(record: dict[str, Any]) -> set[str]:
    return {
        str((item.get("specimen") or {}).get("barcode"))
        for item in record.get("asset_specimen") or []
        if not item.get("asset_detached")
    }


def _settable(record: dict[str, Any], key: str, wanted: Wanted) -> bool:
    """Whether ``fields_if_empty[key]`` may be written: the record has no value, or one we wrote before."""
    held = str(record.get(key) or "")
    return not held or (key in wanted.ours_if and re.fullmatch(wanted.ours_if[key], held) is not None)


def missing_from(record: dict[str, Any], wanted: Wanted, *, removals: bool = True) -> list[str]:
    """What of ``wanted`` the ARS ``record`` does not hold (empty: nothing to write); ``removals=False`` leaves
    tags still to be removed out (after our write: an ARS that keeps them must not make us write forever)."""
    tags = record.get("tags") or {}
    missing = [f"tags.{key}" for key, value in wanted.tags.items() if not _same(tags.get(key), value)]
    missing += [key for key, value in wanted.fields.items() if not _same(record.get(key), value)]
    missing += [key for key, value in wanted.fields_if_empty.items() if _settable(record, key, wanted)
                and not _same(record.get(key), value)]  # fmt: skip
    missing += [f"tags.{key} (to be removed)" for key in wanted.drop_tags if removals and key in tags]
    held = _attached(record)
    missing += [f"specimen {code}" for code in wanted.specimens if code not in held]
    return missing


def _reference(item: dict[str, Any]) -> dict[str, Any]:
    """An attached specimen as ARS takes it back (by id, else by its barcode)."""
    prep = item.get("asset_preparation_type")
    if item.get("specimen_id") is not None:
        return {"specimen_id": item["specimen_id"], "asset_preparation_type": prep}
    return {"specimen": item.get("specimen"), "asset_preparation_type": prep}


def merged(target: AssetRecord, current: dict[str, Any], wanted: Wanted, preparation_type: str) -> dict[str, Any]:
    """The full body to PUT: ``current``'s writable fields with ``wanted`` set on them."""
    body = {key: value for key, value in current.items() if key in WRITABLE_FIELDS}
    body["asset_guid"] = target.guid
    body["updating_pipeline"] = target.pipeline  # the update event names our pipeline
    attached = [item for item in current.get("asset_specimen") or [] if not item.get("asset_detached")]
    have = _attached(current)
    body["asset_specimen"] = [_reference(item) for item in attached] + [
        {"specimen": {"institution": target.institution, "collection": target.collection, "barcode": code},
         "asset_preparation_type": preparation_type}
        for code in dict.fromkeys(wanted.specimens) if code not in have
    ]  # fmt: skip
    body.update(wanted.fields)
    body.update({key: value for key, value in wanted.fields_if_empty.items() if _settable(current, key, wanted)})
    tags = {str(k): str(v) for k, v in (current.get("tags") or {}).items() if k not in wanted.drop_tags}
    body["tags"] = {**tags, **wanted.tags}
    return body


async def update_record(target: AssetRecord, wanted: Callable[[], Awaitable[Wanted]], deps: AssetDeps) -> bool:
    """Bring ``target``'s ARS record to hold what ``wanted()`` returns (asked again after each write, so it may
    grow); returns whether anything was written. One update per record at a time in this daemon (the asset's own
    results and its MOS partners' barcodes take turns). Raises ``DataError`` when ARS no longer has the asset,
    ``TransientError`` when other writers overwrite ours ``MERGE_ROUNDS`` times in a row, ``GroupHeld`` when ARS
    refuses the preparation type, and what the ARS client raises."""
    async with deps.ars_records.hold(target.guid):  # never nested: a trio.Lock is not re-entrant
        return await _update(target, wanted, deps)


async def _update(target: AssetRecord, wanted: Callable[[], Awaitable[Wanted]], deps: AssetDeps) -> bool:
    ensured: set[str] = set()
    missing: list[str] = []
    noted: set[tuple[str, ...]] = set()
    for _ in range(MERGE_ROUNDS):
        want = await wanted()
        for code in want.specimens:
            if code not in ensured:
                await _ensure_specimen(target, code, deps)
                ensured.add(code)
        current, before = await _read(target.guid, deps)
        if not missing_from(current, want):
            return bool(missing)  # written in an earlier round (or by an earlier run of this step)
        await deps.ars.update_asset(target.guid, merged(target, current, want, deps.config.processing.preparation_type))
        written, after = await _read(target.guid, deps)
        await _note_races(target, before, after, noted, deps)  # also in a round that is overwritten afterwards
        missing = missing_from(written, await wanted(), removals=False)
        if not missing:
            return True
        log.warning("ars_record_overwritten", target_guid=target.guid, missing=missing)
    raise TransientError(
        f"ARS's record of {target.guid} lost what we wrote ({', '.join(missing)}) {MERGE_ROUNDS} times in a row: "
        "someone changes it at the same time; merging again later",
        guid=target.guid,
    )


async def _read(guid: str, deps: AssetDeps) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The record and its events as of (no later than) that read: without events in the record, they are asked
    first and the record read again, so an update between the two is never taken as seen already."""
    document = await _document(guid, deps)
    events = document.get("events")
    if isinstance(events, list):
        return document, events
    events = await deps.ars.list_events(guid)
    return await _document(guid, deps), events


async def _document(guid: str, deps: AssetDeps) -> dict[str, Any]:
    document = await deps.ars.get_asset_document(guid)
    if document is None:
        raise DataError(f"ARS no longer has asset {guid}: its results cannot be written", guid=guid)
    return document


async def _ensure_specimen(target: AssetRecord, code: str, deps: AssetDeps) -> None:
    """The specimen exists with our preparation type (its other types kept: an update replaces the list)."""
    ours = deps.config.processing.preparation_type
    where = {"institution": target.institution, "collection": target.collection, "barcode": code}
    found = await deps.ars.get_specimen(**where)
    types = list((found or {}).get("preparation_types") or [])
    if ours in types:
        return
    kept = {key: found[key] for key in ("specimen_pid", "role_restrictions") if found and found.get(key) is not None}
    try:
        await deps.ars.put_specimen(**where, preparation_types=[*types, ours], keep=kept)
    except ArsRejected as exc:
        if "preparation" in str(exc).lower():  # every asset of the collection would get this: hold it
            raise GroupHeld(
                f"ARS refuses the preparation type {ours!r} (processing.preparation_type) for {target.institution}/"
                f"{target.collection}: {exc}",
                group_kind="collection",
            ) from exc
        raise


# --- concurrent changes, by ARS's update events -------------------------------------------------------------


def _key(event: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(event.get(name)) for name in ("event", "timestamp", "user", "pipeline"))


def _instant(event: dict[str, Any]) -> datetime | str:
    """The event's time, parsed (ARS leaves zero fractions out, so text does not sort), else its text."""
    text = str(event.get("timestamp") or "")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _not_after(event: dict[str, Any], ours: dict[str, Any]) -> bool:
    theirs, mine = _instant(event), _instant(ours)
    if isinstance(theirs, datetime) and isinstance(mine, datetime):
        return theirs <= mine
    return True  # times that cannot be compared: it may have been before ours


def replaced_updates(
    before: list[dict[str, Any]], after: list[dict[str, Any]], *, user: str, pipeline: str
) -> list[dict[str, Any]]:
    """Metadata updates by others between our read (``before``) and our re-read (``after``) that did not come
    after ours: what they changed, our PUT may have replaced. Ours is the latest new update with our user and
    pipeline (when none has them: the latest new update); an update at the same time as ours, or at a time that
    cannot be compared, counts as before it."""
    seen = Counter(_key(event) for event in before)
    new: list[dict[str, Any]] = []
    for event in after:
        if seen[_key(event)] > 0:
            seen[_key(event)] -= 1
        elif event.get("event") in METADATA_EVENTS:
            new.append(event)
    if len(new) <= 1:
        return []
    candidates = [e for e in new if e.get("user") == user and e.get("pipeline") == pipeline] or new
    ours = candidates[-1]
    for event in candidates:
        if not _not_after(event, ours):
            ours = event
    return [e for e in new if e is not ours and _not_after(e, ours)]


async def _note_races(
    target: AssetRecord,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    noted: set[tuple[str, ...]],
    deps: AssetDeps,
) -> None:
    user = await deps.ars.username()
    for event in replaced_updates(before, after, user=user, pipeline=target.pipeline):
        if _key(event) in noted:
            continue
        noted.add(_key(event))
        pipeline = f" (pipeline {event['pipeline']})" if event.get("pipeline") else ""
        who = f"{event.get('user') or 'someone'}{pipeline}"
        reason = (
            f"ARS race: {who} changed this asset's ARS record at {event.get('timestamp')}, between our read and our "
            f"write; our full-record update may have replaced that change. Compare the record with its history "
            f"(GET /assetmetadata/{target.guid}/events) and set it again if it is gone"
        )
        log.warning("ars_record_race", target_guid=target.guid, other_user=event.get("user"),
                    at=event.get("timestamp"))  # fmt: skip
        await deps.store.assets.note(target.guid, reason, actor=ACTOR, trigger="ars_race")
