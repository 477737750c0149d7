"""Processing results back to ARS: one full-record metadata update (fetch, merge, put, re-read, compare by
ARS's update events: :mod:`._ars_record`) with the barcodes (as specimens, created first: E3), the subject, the
OCR text, the MOS link and any missing derivative; then the barcode a MOS label receives from this asset
(:mod:`._mos`).

Only codes of a specimen become ARS specimens. A label's, a device target's or a folder's codes are not
specimens: they are kept in the tag ``barcodes``; a MOS label's specimens are the first barcodes of the assets
linked with it. The original's subjects are mapped onto ARS's list by ``processing.subjects``; a subject the
table does not map is kept in the tag ``asset_type``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog

from integration.actors._ars_record import Wanted, update_record
from integration.actors._deps import AssetDeps
from integration.actors._mos import (
    clean_codes,
    disposable_of,
    label_codes,
    specimen_codes,
    update_linked_labels,
)
from integration.domain import BarcodeView, DerivativesView, OcrView, decode_metadata
from integration.state_machines import DerivativeState, JobState
from integration.store import AssetRecord, JobRecord

__all__ = ["ProcessingResults", "collect_results", "push_results", "wanted_of"]

log = structlog.get_logger()


class ProcessingResults(msgspec.Struct, frozen=True, kw_only=True):
    barcode: BarcodeView | None
    ocr: OcrView | None
    missing_derivatives: list[str]  # reasons, one per derivative that could not be made or stored


def _view(jobs: list[JobRecord], module: str, kind: type[Any]) -> Any:
    for job in jobs:
        if job.module == module and job.state is JobState.DONE and job.result is not None:
            return msgspec.json.decode(job.result, type=kind)
    return None


async def collect_results(record: AssetRecord, jobs: list[JobRecord], deps: AssetDeps) -> ProcessingResults:
    made: DerivativesView | None = _view(jobs, "crop_derivatives", DerivativesView)
    missing = list(made.failed) if made else []
    for child in await deps.store.derivatives.of_parent(record.guid):
        if child.state is DerivativeState.FAILED:
            missing.append(f"{child.name}: {child.reason}")
    return ProcessingResults(
        barcode=_view(jobs, "barcode", BarcodeView), ocr=_view(jobs, "ocr", OcrView), missing_derivatives=missing
    )


async def push_results(record: AssetRecord, results: ProcessingResults, deps: AssetDeps) -> str:
    """Write ``results`` into the asset's ARS record (and this asset's barcode into its linked MOS labels');
    returns a one-line summary for its log."""
    mos = await deps.store.mos.get(record.guid)
    raw = await deps.store.assets.metadata_json(record.guid)
    delivered = frozenset(decode_metadata(raw).metadata.tags) if raw is not None else frozenset()

    async def wanted() -> Wanted:  # asked again after the write: a MOS partner may have linked meanwhile
        received = await label_codes(record.guid, deps)
        return wanted_of(record, results, received, mos.unique_label_id if mos else "", deps, delivered)

    await update_record(record, wanted, deps)
    want = await wanted()
    summary = [f"specimens {', '.join(want.specimens) or 'none'}"] if results.barcode is not None else []
    if mos is not None:
        summary.append(f"MOS {mos.unique_label_id}")
    summary += await update_linked_labels(record, deps)
    if results.ocr is not None and results.ocr.tags_ocr.strip():
        summary.append(f"OCR {len(results.ocr.tags_ocr.split())} words")
    if results.missing_derivatives:
        summary.append(f"{len(results.missing_derivatives)} derivative(s) missing")
    return "; ".join(summary) or "nothing to add"


#: Tags processing derives from the barcode result: one a later result no longer sets is removed.
BARCODE_TAGS = ("barcodes", "asset_type", "disposable_id", "barcode_needs_review")


def wanted_of(
    record: AssetRecord,
    results: ProcessingResults,
    received: tuple[str, ...],
    mos_id: str,
    deps: AssetDeps,
    delivered: frozenset[str] = frozenset(),
) -> Wanted:
    """What processing owns on the asset's ARS record, from its ``results`` (``received``: the barcodes a MOS
    label takes from the assets linked with it; ``mos_id``: its MOS label id, or ""; ``delivered``: the tag names
    its delivered metadata carries, never removed)."""
    tags: dict[str, str] = {}
    fields: dict[str, str] = {}
    specimens: list[str] = []
    dropped: list[str] = []
    barcode = results.barcode
    if barcode is not None:
        codes, own = clean_codes(barcode.barcodes), specimen_codes(barcode)
        specimens += own
        if codes and not own:  # a label's, a device target's, a folder's codes: not specimens
            tags["barcodes"] = ", ".join(codes)
        subject = (barcode.asset_subject or "").strip().lower()
        mapped = deps.config.processing.subjects.get(subject, "")
        if mapped:
            fields["asset_subject"] = mapped
        elif subject:
            tags["asset_type"] = subject
        if disposable_of(barcode):
            tags["disposable_id"] = disposable_of(barcode)
        if barcode.needs_review:
            tags["barcode_needs_review"] = "a barcode was read with two values: a person must look"
        dropped += [tag for tag in BARCODE_TAGS if tag not in tags and tag not in delivered]
    specimens += received
    if results.ocr is not None and results.ocr.tags_ocr.strip():
        tags["ocr"] = results.ocr.tags_ocr.strip()
    if results.missing_derivatives:
        fields["status"] = "ISSUE_WITH_MEDIA"
        tags["missing_derivative"] = "; ".join(results.missing_derivatives)[:1000]
    elif "missing_derivative" not in delivered:
        dropped.append("missing_derivative")
    return Wanted(
        specimens=tuple(dict.fromkeys(specimens)),
        tags=tags,
        fields=fields,
        fields_if_empty={"mos_id": mos_id},  # "" clears a label id we wrote (no MOS code any more)
        ours_if={"mos_id": rf"{re.escape(record.workstation)}_\d{{4}}-\d{{2}}-\d{{2}}_.+"},  # a label id we wrote
        drop_tags=tuple(dropped),
    )
