"""What each pipeline module does on the node, given its ticket and the asset's working folder.

Every module first makes sure the asset's files are in the folder (downloaded from the share, CRC-32 checked,
resumed; nothing is fetched twice), so a job runs on any node, not only on the one that ran the asset loader.
Each returns (its result as JSON-ready builtins, the module's version).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from integration.domain import JobTicket, TicketFile
from integration.errors import DataError
from integration.hpc_client.modules import barcode, cleanup, derivatives, loader, ocr
from integration.hpc_client.runner._ars import NodeArs

__all__ = ["MODULES", "Work"]

LOADER_VERSION = "1.0.0"
UPLOAD_VERSION = "1.0.0"


class Work(msgspec.Struct, frozen=True, kw_only=True):
    ticket: JobTicket
    folder: Path  # the asset's working folder: <work root>/<guid>
    work_root: Path
    ars: NodeArs


def _fetch(work: Work) -> dict[str, Path]:
    fetched: dict[str, Path] = {}
    for file in work.ticket.files:
        target = work.folder / file.name
        if not target.exists():
            loader.download(file.url, target, expected_crc32=file.crc32, expected_size=file.size_bytes,
                            headers=work.ars.headers())  # fmt: skip
        fetched[file.name] = target
    return fetched


def _one(work: Work, kind: str) -> TicketFile | None:
    return next((f for f in work.ticket.files if f.kind == kind), None)


def _input(work: Work) -> dict[str, Any]:
    _fetch(work)
    image = _one(work, "image")
    if image is None:
        raise DataError(f"asset {work.ticket.guid} has no image file to process")
    raw = _one(work, "raw")
    return {
        "guid": work.ticket.guid,
        "image": str(work.folder / image.name),
        "raw": str(work.folder / raw.name) if raw else None,
        "metadata": work.ticket.metadata,
    }


def _asset_loader(work: Work) -> tuple[Any, str]:
    fetched = _fetch(work)
    return {"files": sorted(fetched), "folder": str(work.folder)}, LOADER_VERSION


def _barcode(work: Work) -> tuple[Any, str]:
    result = barcode.run_barcode(barcode.BarcodeJob(**_input(work)))
    return msgspec.to_builtins(result), result.version


def _ocr(work: Work) -> tuple[Any, str]:
    result = ocr.run_ocr(ocr.OcrJob(**_input(work)))
    return msgspec.to_builtins(result), result.version


def _crop_derivatives(work: Work) -> tuple[Any, str]:
    out = work.folder / "derivatives"
    result = derivatives.run_derivatives(derivatives.DerivativesJob(**_input(work), out_dir=str(out)))
    return msgspec.to_builtins(result), result.version


def _derivative_upload(work: Work) -> tuple[Any, str]:
    uploaded = []
    for item in work.ticket.derivatives:
        work.ars.upload(item, work.folder / "derivatives" / item.name)
        uploaded.append(item.guid)
    return {"uploaded": uploaded}, UPLOAD_VERSION


def _cleanup(work: Work) -> tuple[Any, str]:
    cleaned = cleanup.remove_job_files(work.folder, job_root=work.work_root)
    return msgspec.to_builtins(cleaned), cleanup.MODULE_VERSION


MODULES: dict[str, Callable[[Work], tuple[Any, str]]] = {
    "asset_loader": _asset_loader,
    "barcode": _barcode,
    "ocr": _ocr,
    "crop_derivatives": _crop_derivatives,
    "derivative_upload": _derivative_upload,
    "cleanup": _cleanup,
}
