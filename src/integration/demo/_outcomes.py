"""What the demo prints at the end: per asset, the barcodes found against the one generated, the OCR words,
the derivatives made, and where it is now; and the totals."""

from __future__ import annotations

import msgspec
from rich.console import Console
from rich.table import Table

from integration.domain import BarcodeView, OcrView
from integration.state_machines import JobState
from integration.store import Store

__all__ = ["AssetOutcome", "collect_outcomes", "print_outcomes"]


class AssetOutcome(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    state: str
    generated: str  # the barcode drawn on the sheet
    found: list[str]
    ocr_words: int
    derivatives: int
    reason: str


async def collect_outcomes(store: Store, generated: dict[str, str]) -> list[AssetOutcome]:
    outcomes = []
    for guid, barcode in sorted(generated.items()):
        record = await store.assets.get(guid)
        found: list[str] = []
        words = 0
        for job in await store.jobs.of_asset(guid) if record else []:
            if job.state is not JobState.DONE or job.result is None:
                continue
            if job.module == "barcode":
                found = msgspec.json.decode(job.result, type=BarcodeView).barcodes
            elif job.module == "ocr":
                words = len(msgspec.json.decode(job.result, type=OcrView).tags_ocr.split())
        children = await store.derivatives.of_parent(guid) if record else []
        outcomes.append(
            AssetOutcome(
                guid=guid,
                state=record.state.value if record else "not imported",
                generated=barcode,
                found=found,
                ocr_words=words,
                derivatives=len(children),
                reason=record.reason if record else "",
            )
        )
    return outcomes


def print_outcomes(outcomes: list[AssetOutcome], console: Console) -> None:
    table = Table(title="what processing found, per asset (GUID ends)")
    for column in ("asset", "state", "barcode drawn", "read", "OCR words", "derivs"):
        table.add_column(column, no_wrap=True)
    for item in outcomes:
        read = "✓ same" if item.found == [item.generated] else f"✗ {', '.join(item.found) or 'none'}"
        table.add_row(f"…{item.guid[-6:]}", item.state, item.generated, read, str(item.ocr_words),
                      str(item.derivatives))  # fmt: skip
    console.print(table)
    right = sum(1 for item in outcomes if item.found == [item.generated])
    console.print(
        f"barcodes: {right}/{len(outcomes)} found exactly as generated; OCR: {sum(o.ocr_words for o in outcomes)} "
        f"words; derivatives: {sum(o.derivatives for o in outcomes)} made"
    )
    for item in outcomes:
        if item.state != "finalized" and item.reason:
            console.print(f"  {item.guid}: {item.state}: {item.reason}", highlight=False)
