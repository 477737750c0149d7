"""What the demo prints at the end: per asset, the barcodes found against the one generated, the OCR words,
the derivatives made, its MOS links, and where it is now; and the totals, with each MOS label's specimens as ARS
holds them."""

from __future__ import annotations

import msgspec
from rich.console import Console
from rich.table import Table

from integration.adapters.ars import ArsClient
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
    mos: str = ""  # "label", "specimen" or "" (not a multi-object specimen)
    linked: int = 0  # assets linked with it by its disposable code
    ars_specimens: list[str] = []  # a MOS label's specimens in ARS: the first barcode of each linked asset


async def collect_outcomes(store: Store, generated: dict[str, str], ars: ArsClient) -> list[AssetOutcome]:
    """Each generated asset's outcome (``generated``: GUID -> the code drawn for the barcode job to find)."""
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
        mos = await store.mos.get(guid) if record else None
        held: list[str] = []
        if mos is not None and mos.label:
            document = await ars.get_asset_document(guid) or {}
            held = [str((s.get("specimen") or {}).get("barcode")) for s in document.get("asset_specimen") or []]
        outcomes.append(
            AssetOutcome(
                guid=guid,
                state=record.state.value if record else "not imported",
                generated=barcode,
                found=found,
                ocr_words=words,
                derivatives=len(children),
                reason=record.reason if record else "",
                mos="" if mos is None else "label" if mos.label else "specimen",
                linked=len(mos.connections) if mos else 0,
                ars_specimens=sorted(held),
            )
        )
    return outcomes


def print_outcomes(outcomes: list[AssetOutcome], console: Console) -> None:
    table = Table(
        title="what processing found, per asset (GUID ends)",
        caption="read: what the barcode job found; ↔N: MOS-linked with N assets",
    )
    for column in ("asset", "state", "drawn", "read", "words", "derivs", "MOS"):
        table.add_column(column, no_wrap=True)
    for item in outcomes:
        read = "✓ same" if item.found == [item.generated] else f"✗ {', '.join(item.found) or 'none'}"
        mos = f"{'label' if item.mos == 'label' else 'spec.'} ↔{item.linked}" if item.mos else ""
        table.add_row(f"…{item.guid[-6:]}", item.state, item.generated, read, str(item.ocr_words),
                      str(item.derivatives), mos)  # fmt: skip
    console.print(table)
    right = sum(1 for item in outcomes if item.found == [item.generated])
    console.print(
        f"barcodes: {right}/{len(outcomes)} found exactly as generated; OCR: {sum(o.ocr_words for o in outcomes)} "
        f"words; derivatives: {sum(o.derivatives for o in outcomes)} made"
    )
    for item in outcomes:
        if item.mos == "label":
            console.print(
                f"MOS label …{item.guid[-6:]} ({item.generated}): linked with {item.linked} specimen sheet(s); "
                f"its specimens in ARS: {', '.join(item.ars_specimens) or 'none'}",
                highlight=False,
            )
    for item in outcomes:
        if item.state != "finalized" and item.reason:
            console.print(f"  {item.guid}: {item.state}: {item.reason}", highlight=False)
