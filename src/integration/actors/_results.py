"""Processing results back to ARS: one full-record metadata update with the barcodes (as specimens, created
first: E3), the subject, the OCR text and any missing derivative.

ARS has no ETags and its PUT replaces the whole record (ars-api §3.1.2), so the update is fetch → merge → put
→ re-read: tags set by others are kept, and a re-read that lacks what we wrote (someone's PUT landed between
ours and the read) raises a transient error, so the whole merge runs again after a back-off. What remains is
documented in docs/processing.md: a foreign change to a field we also write, made between our fetch and our
put, is lost (ARS gives no way to detect it before writing).
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from integration.actors._ars_steps import create_body
from integration.actors._deps import AssetDeps
from integration.domain import BarcodeView, DerivativesView, OcrView
from integration.errors import TransientError
from integration.state_machines import DerivativeState, JobState
from integration.store import AssetRecord, JobRecord

__all__ = ["ProcessingResults", "collect_results", "push_results"]

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
    """Write ``results`` into the asset's ARS record; returns a one-line summary for its log."""
    ars, config = deps.ars, deps.config.processing
    current = await ars.get_asset_document(record.guid) or {}
    body = await create_body(record, deps.store)
    ours: dict[str, Any] = dict(body.get("tags") or {})  # type: ignore[call-overload]
    tags: dict[str, Any] = {**(current.get("tags") or {}), **ours}
    summary: list[str] = []
    codes = results.barcode.barcodes if results.barcode else []
    for code in codes:
        await ars.put_specimen(institution=record.institution, collection=record.collection, barcode=code,
                               preparation_type=config.preparation_type)  # fmt: skip
    body["asset_specimen"] = [
        {"specimen": {"institution": record.institution, "collection": record.collection, "barcode": code},
         "asset_preparation_type": config.preparation_type}
        for code in codes
    ]  # fmt: skip
    if results.barcode is not None:
        summary.append(f"barcodes {', '.join(codes) or 'none'}")
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
        tags["ocr"] = results.ocr.tags_ocr
        summary.append(f"OCR {len(results.ocr.tags_ocr.split())} words")
    if results.missing_derivatives:
        body["status"] = "ISSUE_WITH_MEDIA"
        tags["missing_derivative"] = "; ".join(results.missing_derivatives)[:1000]
        summary.append(f"{len(results.missing_derivatives)} derivative(s) missing")
    body["tags"] = {key: str(value) for key, value in tags.items()}
    await ars.update_asset(record.guid, body)
    written = await ars.get_asset_document(record.guid) or {}
    lost = _lost(body, written)
    if lost:
        raise TransientError(
            f"ARS's record lacks what we just wrote ({', '.join(lost)}): someone changed it at the same time; "
            "merging again",
            guid=record.guid,
        )
    return "; ".join(summary) or "nothing to add"


def _lost(body: dict[str, Any], written: dict[str, Any]) -> list[str]:
    lost = [f"tags.{key}" for key, value in body["tags"].items() if (written.get("tags") or {}).get(key) != value]
    wanted = {item["specimen"]["barcode"] for item in body["asset_specimen"]}
    held = {
        (item.get("specimen") or {}).get("barcode")
        for item in written.get("asset_specimen") or []
        if not item.get("asset_detached")
    }
    lost += [f"specimen {code}" for code in sorted(wanted - held)]
    return lost
