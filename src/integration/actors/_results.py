"""Processing results back to ARS: one full-record metadata update with the barcodes (as specimens, created
first: E3), the subject, the OCR text and any missing derivative.

ARS has no ETags and its PUT replaces the whole record (ars-api §3.1.2; absent fields are cleared). So the body
starts from ARS's own current record (its client-writable fields, ars-api §5.1) and sets only what processing owns: the
specimens it found are added to those attached already (a curator's stay), the subject, its own tags
(``OWN_TAGS``; every other tag is kept), and ``ISSUE_WITH_MEDIA`` when a derivative is missing. After the PUT the
record is read again: if what we wrote is not there (another PUT landed between ours and the read), a
transient error makes the whole merge run again after a back-off. What remains is in docs/processing.md: a
change by someone else made between our read and our PUT is overwritten (ARS gives no way to detect it first).
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from integration.actors._deps import AssetDeps
from integration.domain import BarcodeView, DerivativesView, OcrView
from integration.errors import ArsRejected, DataError, GroupHeld, TransientError
from integration.state_machines import DerivativeState, JobState
from integration.store import AssetRecord, JobRecord

__all__ = ["OWN_TAGS", "WRITABLE_FIELDS", "ProcessingResults", "collect_results", "push_results"]

log = structlog.get_logger()

#: Tags processing writes; every other tag on the record is left as it is.
OWN_TAGS = ("ocr", "asset_type", "disposable_id", "barcode_needs_review", "missing_derivative")
#: The client-writable fields of an E3 asset (ars-api §5.1): only these are sent back, as ARS holds them.
WRITABLE_FIELDS = frozenset({
    "asset_guid", "asset_pid", "status", "institution", "collection", "pipeline", "workstation", "digitiser",
    "updating_pipeline", "parent_guids", "asset_specimen", "funding", "asset_subject", "payload_type", "file_formats",
    "asset_locked", "restricted_access", "role_restrictions", "tags", "date_asset_taken", "date_asset_finalised",
    "date_metadata_ingested", "camera_setting_control", "metadata_version", "metadata_source", "mos_id",
    "specify_attachment_title", "specify_attachment_remarks", "make_public", "push_to_specify",
    "complete_digitiser_list", "issues", "legality", "external_publishers",
})  # fmt: skip


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
    """Write ``results`` into the asset's ARS record; returns a one-line summary for its log."""
    ars = deps.ars
    current = await ars.get_asset_document(record.guid)
    if current is None:
        raise DataError(f"ARS no longer has asset {record.guid}: its results cannot be written", guid=record.guid)
    codes = results.barcode.barcodes if results.barcode else []
    for code in codes:
        await _ensure_specimen(record, code, deps)
    body = _merged(record, current, results, deps)
    await ars.update_asset(record.guid, body)
    written = await ars.get_asset_document(record.guid) or {}
    lost = _lost(body, written, codes)
    if lost:
        raise TransientError(
            f"ARS's record lacks what we just wrote ({', '.join(lost)}): someone changed it at the same time; "
            "merging again",
            guid=record.guid,
        )
    summary = [f"barcodes {', '.join(codes) or 'none'}"] if results.barcode is not None else []
    if results.ocr is not None and results.ocr.tags_ocr.strip():
        summary.append(f"OCR {len(results.ocr.tags_ocr.split())} words")
    if results.missing_derivatives:
        summary.append(f"{len(results.missing_derivatives)} derivative(s) missing")
    return "; ".join(summary) or "nothing to add"


async def _ensure_specimen(record: AssetRecord, code: str, deps: AssetDeps) -> None:
    """The specimen exists with our preparation type (its other types kept: an update replaces the list)."""
    ours = deps.config.processing.preparation_type
    where = {"institution": record.institution, "collection": record.collection, "barcode": code}
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
                f"ARS refuses the preparation type {ours!r} (processing.preparation_type) for {record.institution}/"
                f"{record.collection}: {exc}",
                group_kind="collection",
            ) from exc
        raise


def _merged(
    record: AssetRecord, current: dict[str, Any], results: ProcessingResults, deps: AssetDeps
) -> dict[str, Any]:
    config = deps.config.processing
    body = {key: value for key, value in current.items() if key in WRITABLE_FIELDS}
    body["asset_guid"] = record.guid
    body["updating_pipeline"] = record.pipeline  # the update event names our pipeline
    attached = [item for item in current.get("asset_specimen") or [] if not item.get("asset_detached")]
    specimens = [_reference(item) for item in attached]
    have = {(item.get("specimen") or {}).get("barcode") for item in attached}
    codes = results.barcode.barcodes if results.barcode else []
    specimens += [
        {"specimen": {"institution": record.institution, "collection": record.collection, "barcode": code},
         "asset_preparation_type": config.preparation_type}
        for code in codes if code not in have
    ]  # fmt: skip
    body["asset_specimen"] = specimens
    tags: dict[str, str] = {str(k): str(v) for k, v in (current.get("tags") or {}).items()}
    if results.barcode is not None:
        subject = (results.barcode.asset_subject or "").strip().lower()
        mapped = config.subjects.get(subject, "")
        if mapped:
            body["asset_subject"] = mapped
        elif subject:
            tags["asset_type"] = subject
        if results.barcode.MOS and results.barcode.disposable:
            tags["disposable_id"] = results.barcode.disposable
        if results.barcode.needs_review:
            tags["barcode_needs_review"] = "a barcode was read with two values: a person must look"
    if results.ocr is not None and results.ocr.tags_ocr.strip():
        tags["ocr"] = results.ocr.tags_ocr.strip()
    if results.missing_derivatives:
        body["status"] = "ISSUE_WITH_MEDIA"
        tags["missing_derivative"] = "; ".join(results.missing_derivatives)[:1000]
    body["tags"] = tags
    return body


def _reference(item: dict[str, Any]) -> dict[str, Any]:
    """An attached specimen as ARS takes it back (by id, else by its barcode)."""
    prep = item.get("asset_preparation_type")
    if item.get("specimen_id") is not None:
        return {"specimen_id": item["specimen_id"], "asset_preparation_type": prep}
    return {"specimen": item.get("specimen"), "asset_preparation_type": prep}


def _lost(body: dict[str, Any], written: dict[str, Any], codes: list[str]) -> list[str]:
    held_tags = written.get("tags") or {}
    lost = [
        f"tags.{key}"
        for key in OWN_TAGS
        if key in body["tags"] and str(held_tags.get(key, "")).strip() != body["tags"][key].strip()
    ]
    held = {
        (item.get("specimen") or {}).get("barcode")
        for item in written.get("asset_specimen") or []
        if not item.get("asset_detached")
    }
    lost += [f"specimen {code}" for code in sorted(set(codes) - held)]
    return lost
