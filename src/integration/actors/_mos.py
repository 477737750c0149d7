"""Multi-object specimens (original-integration §3.4): linking assets that share a disposable label barcode, and
the barcodes a label receives.

A MOS label and the specimens it belongs to are photographed apart, on one workstation on one day, each image
showing the same disposable barcode. When an asset's barcode result names a disposable code, it is linked with
every other asset of that ``unique_label_id`` (``<workstation>_<day taken>_<disposable>``, within the
institution) in the store (:class:`integration.store.MosEntry`). In ARS:

* every MOS asset gets ``mos_id`` = its label id (unless the record has one already: a curator's stays) and the tag
  ``disposable_id``;
* a label gets, as its specimens, the first specimen barcode of every asset linked with it. Whichever of the two
  writes its results second completes the link: the label's own update takes the barcodes of everyone linked so
  far (asked again after its write, so a link made meanwhile is not missed), and a specimen's update adds its
  first barcode to each label linked with it that ARS holds (nothing written when it is there already).
"""

from __future__ import annotations

import structlog

from integration.actors._ars_record import Wanted, update_record
from integration.actors._deps import AssetDeps
from integration.domain import BarcodeView, decode_metadata
from integration.errors import ArsRejected, DataError, GroupHeld
from integration.store import NOT_AVAILABLE, AssetRecord, MosEntry

__all__ = [
    "clean_codes",
    "disposable_of",
    "label_codes",
    "link_mos",
    "mos_entry",
    "specimen_codes",
    "update_linked_labels",
]

log = structlog.get_logger()

ACTOR = "asset"


def clean_codes(codes: list[str]) -> list[str]:
    """The codes stripped, empty ones left out, each once, in order."""
    return list(dict.fromkeys(code.strip() for code in codes if code.strip()))


def specimen_codes(result: BarcodeView) -> list[str]:
    """The result's codes when they are a specimen's (its subject is ``specimen``), cleaned; else none."""
    is_specimen = (result.asset_subject or "").strip().lower() == "specimen" and not result.label
    return clean_codes(result.barcodes) if is_specimen else []


def disposable_of(result: BarcodeView) -> str:
    """The disposable MOS code the barcode result names, stripped ("" when it names none)."""
    return (result.disposable or "").strip() if result.MOS else ""


def mos_entry(record: AssetRecord, result: BarcodeView, date_asset_taken: str) -> MosEntry | None:
    """The MOS row of ``record`` for its barcode ``result``, or None when the image has no disposable code."""
    disposable = disposable_of(result)
    if not disposable:
        return None
    codes = specimen_codes(result)
    first = codes[0] if codes else ""
    return MosEntry(
        guid=record.guid,
        institution=record.institution,
        unique_label_id=f"{record.workstation}_{date_asset_taken[:10]}_{disposable}",
        disposable_id=disposable,
        label=result.label,
        spid=f"{record.institution}_{record.collection}_{first}" if first else NOT_AVAILABLE,
        first_barcode=first,
    )


async def link_mos(record: AssetRecord, result: BarcodeView, deps: AssetDeps) -> str:
    """Record and link ``record``'s MOS row (nothing when its image has no disposable code); returns a few words
    for the job's applied note."""
    if not disposable_of(result):
        if await deps.store.mos.unlink(record.guid, actor=ACTOR):  # a re-run read no disposable code this time
            return "; no MOS code any more: unlinked"
        return ""
    raw = await deps.store.assets.metadata_json(record.guid)
    if raw is None:
        raise DataError(f"no metadata recorded for {record.guid}", guid=record.guid)
    entry = mos_entry(record, result, decode_metadata(raw).metadata.date_asset_taken)
    assert entry is not None
    linked = await deps.store.mos.link(entry, actor=ACTOR)
    log.info("mos_linked", label_id=linked.unique_label_id, label=linked.label, connections=len(linked.connections))
    return f"; MOS {linked.unique_label_id}, linked with {len(linked.connections)} asset(s)"


async def label_codes(guid: str, deps: AssetDeps) -> tuple[str, ...]:
    """The specimen barcodes a MOS label receives: the first of each asset linked with it (none if not a label)."""
    entry = await deps.store.mos.get(guid)
    if entry is None or not entry.label:
        return ()
    return tuple(dict.fromkeys(p.first_barcode for p in await deps.store.mos.partners(guid) if p.first_barcode))


async def update_linked_labels(record: AssetRecord, deps: AssetDeps) -> list[str]:
    """Add ``record``'s first specimen barcode to every label linked with it that ARS holds (nothing is written
    when the label has it already: the label's own update took it); returns a few words per label written.
    Writes to a label's record take turns with the label's own update (:func:`update_record` locks per GUID).

    A label whose record ARS refuses to change, no longer has, or whose collection refuses the preparation type
    is noted on both assets and skipped: the specimen's own results do not depend on it, and its group is not
    held for it. A transient failure (ARS busy, the label syncing to Specify) is raised: the step is repeated
    after the asset's back-off, and writes nothing twice."""
    entry = await deps.store.mos.get(record.guid)
    if entry is None or not entry.first_barcode:
        return []
    done: list[str] = []
    for partner in await deps.store.mos.partners(record.guid):
        label = await deps.store.assets.get(partner.guid) if partner.label else None
        if label is None or not label.in_ars:
            continue  # not a label, or not in ARS yet: its own update takes our barcode then

        async def wanted() -> Wanted:
            return Wanted(specimens=(entry.first_barcode,))

        try:
            if await update_record(label, wanted, deps):
                done.append(f"label {label.guid} given {entry.first_barcode}")
        except (ArsRejected, DataError, GroupHeld) as exc:  # the label's own problem: never this asset's group
            reason = f"MOS: the label's ARS record did not take specimen {entry.first_barcode}: {exc}"
            log.warning("mos_label_not_updated", label_guid=label.guid, error=str(exc))
            await deps.store.assets.note(record.guid, f"{reason} (label {label.guid})", actor=ACTOR, trigger="mos")
            await deps.store.assets.note(label.guid, f"{reason} (from {record.guid})", actor=ACTOR, trigger="mos")
    return done
