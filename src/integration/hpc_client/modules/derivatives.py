"""The cropping & derivatives job: crop to the specimen and what documents it, write a 400 ppi TIFF and a
72 ppi JPEG under their derivative GUIDs, each with its derivative metadata, size and CRC-32.

Resolution (docs/hpc-derivatives.md): the file's own resolution tag when present and plausible, else the
configured sensor resolution. A source below 400 ppi is never upsampled: the "400 ppi" derivative keeps the
source's resolution and its result says so. A crop that would keep less than ``min_crop_share`` of the image is
refused with its reason, and the derivatives are made from the uncropped image instead.

Files are written under a temporary name and renamed when complete, so a crash never leaves a half file under a
derivative's name.
"""

from __future__ import annotations

import copy
import errno
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from PIL import Image

from integration.domain import DasscoGuid
from integration.errors import ConfigError, NodeResourceError

from ._checksum import size_and_crc32
from ._crop import find_crop
from ._image import DEFAULT_MAX_MEGAPIXELS, LoadedImage, load_image, resolution_of
from ._job import JobInput, node_failures

__all__ = [
    "MODULE_VERSION",
    "CropOutcome",
    "DerivativeFile",
    "DerivativeSettings",
    "DerivativesJob",
    "DerivativesResult",
    "make_derivatives",
    "make_derivatives_file",
    "run_derivatives",
]

MODULE_VERSION = "1.0.0"


class DerivativeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sensor_ppi: float = 600.0  # used when the file has no plausible resolution tag
    tiff_ppi: float = 400.0
    jpeg_ppi: float = 72.0
    jpeg_quality: int = 88
    tiff_compression: Literal["raw", "tiff_lzw", "tiff_adobe_deflate"] = "tiff_lzw"
    crop: bool = True
    min_crop_share: float = 0.20  # a crop keeping less of the image than this is refused
    crop_margin_share: float = 0.01
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS


class CropOutcome(msgspec.Struct, frozen=True, kw_only=True):
    applied: bool
    box: tuple[int, int, int, int] | None  # in the upright source image
    share: float | None  # of the source image's area kept
    reason: str  # why the crop was (not) applied, for people


class DerivativeFile(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    number: int  # the derivative field of the GUID
    path: str
    file_format: str  # as in metadata: "tif" / "jpeg"
    ppi: float
    width: int
    height: int
    size_bytes: int
    crc32: int  # unsigned, as ARS reports it
    metadata: dict[str, Any]  # the parent's v2_1_0 metadata with this derivative's fields
    note: str = ""


class DerivativesResult(msgspec.Struct, frozen=True, kw_only=True):
    parent_guid: str
    source_ppi: float
    ppi_source: Literal["file", "configured"]
    crop: CropOutcome
    derivatives: list[DerivativeFile]
    seconds: float
    module: str = "derivatives"
    version: str = MODULE_VERSION
    notes: list[str] = []


class DerivativesJob(JobInput, frozen=True, kw_only=True):
    """The cropping & derivatives job. ``from_raw``: demosaic the raw sibling instead of reading the image
    (a camera JPEG/TIFF may be a processed, lower-quality copy of the raw)."""

    out_dir: str
    from_raw: bool = False
    settings: DerivativeSettings = msgspec.field(default_factory=DerivativeSettings)


def run_derivatives(job: DerivativesJob) -> DerivativesResult:
    if job.from_raw and not job.raw:
        raise ConfigError(f"derivatives {job.guid}: from_raw is set but the job names no raw sibling")
    source = Path(job.raw) if job.from_raw and job.raw else job.image_path
    with node_failures(f"derivatives {job.guid}"):
        return make_derivatives_file(
            source, guid=job.guid, out_dir=Path(job.out_dir), metadata=job.metadata, settings=job.settings
        )


def make_derivatives_file(
    path: Path,
    *,
    guid: str,
    out_dir: Path,
    metadata: dict[str, Any] | None = None,
    settings: DerivativeSettings | None = None,
) -> DerivativesResult:
    settings = settings or DerivativeSettings()
    DasscoGuid.parse(guid).derivative_of(1)  # a wrong GUID is refused before a 200 MP file is decoded
    loaded = load_image(path, max_megapixels=settings.max_megapixels)
    return make_derivatives(loaded, guid=guid, out_dir=out_dir, metadata=metadata, settings=settings)


def make_derivatives(
    loaded: LoadedImage,
    *,
    guid: str,
    out_dir: Path,
    metadata: dict[str, Any] | None = None,
    settings: DerivativeSettings | None = None,
) -> DerivativesResult:
    """Crop ``loaded`` and write derivatives 1 (TIFF) and 2 (JPEG) of ``guid`` into ``out_dir``."""
    settings = settings or DerivativeSettings()
    started = time.perf_counter()
    parent = DasscoGuid.parse(guid)
    children = {number: str(parent.derivative_of(number)) for number in (1, 2)}  # InvalidGuid before any work
    source_ppi, ppi_source = resolution_of(loaded, configured_ppi=settings.sensor_ppi)
    crop = _crop(loaded.image, settings)
    image = loaded.image.crop(crop.box) if crop.applied and crop.box else loaded.image
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_failure(out_dir, exc) from exc
    parent_metadata = metadata or {}
    derivatives = []
    for number, target_ppi, file_format in ((1, settings.tiff_ppi, "tif"), (2, settings.jpeg_ppi, "jpeg")):
        child = children[number]
        ppi, note = target_ppi, ""
        if source_ppi < target_ppi:
            ppi = source_ppi
            note = f"the source has {source_ppi:g} ppi ({ppi_source}); kept, never upsampled to {target_ppi:g} ppi"
        scaled = _scaled(image, ppi / source_ppi)
        path = out_dir / f"{child}.{'tif' if file_format == 'tif' else 'jpg'}"
        _write(scaled, path, file_format, ppi, settings)
        size, crc = size_and_crc32(path)
        derivatives.append(
            DerivativeFile(
                guid=child, number=number, path=str(path), file_format=file_format, ppi=round(ppi, 2),
                width=scaled.width, height=scaled.height, size_bytes=size, crc32=crc,
                metadata=derivative_metadata(parent_metadata, guid=child, parent_guid=guid, file_format=file_format,
                                             payload_type="image" if number == 1 else "thumbnail"),
                note=note,
            )
        )  # fmt: skip
    return DerivativesResult(
        parent_guid=guid,
        source_ppi=round(source_ppi, 2),
        ppi_source=ppi_source,
        crop=crop,
        derivatives=derivatives,
        seconds=round(time.perf_counter() - started, 3),
        notes=list(loaded.notes),
    )


def derivative_metadata(
    parent: dict[str, Any], *, guid: str, parent_guid: str, file_format: str, payload_type: str
) -> dict[str, Any]:
    """The parent's v2_1_0 metadata as the derivative's: its own GUID, ``parent_guid``, format, payload type.

    ARS's create body calls the parent field ``parent_guids`` (a list); the daemon maps it (ars-api §3.1.2).
    """
    child = copy.deepcopy(parent)
    child.update(
        asset_guid=guid,
        parent_guid=parent_guid,
        file_format=file_format,
        payload_type=[payload_type],
        date_metadata_created=datetime.now(UTC).isoformat(timespec="seconds"),
        metadata_created_by="integration hpc derivatives",
    )
    return child


def _crop(image: Image.Image, settings: DerivativeSettings) -> CropOutcome:
    if not settings.crop:
        return CropOutcome(applied=False, box=None, share=None, reason="cropping is switched off (settings)")
    box = find_crop(image, margin_share=settings.crop_margin_share)
    if box is None:
        return CropOutcome(applied=False, box=None, share=None, reason="no sheet content found: not cropped")
    share = box.area / (image.width * image.height)
    if share < settings.min_crop_share:
        reason = (
            f"the crop would keep {share:.0%} of the image, less than the {settings.min_crop_share:.0%} allowed "
            "(min_crop_share): refused, derivatives made from the uncropped image"
        )
        return CropOutcome(applied=False, box=box.as_tuple(), share=round(share, 4), reason=reason)
    return CropOutcome(applied=True, box=box.as_tuple(), share=round(share, 4), reason="cropped to the sheet's content")


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    if factor >= 0.999:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    # reduce() by an integer first is much faster than resampling a 54 MP image directly, and as sharp
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _write(image: Image.Image, path: Path, file_format: str, ppi: float, settings: DerivativeSettings) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        if file_format == "tif":
            image.save(partial, format="TIFF", dpi=(ppi, ppi), compression=settings.tiff_compression)
        else:
            image.convert("RGB").save(
                partial, format="JPEG", dpi=(round(ppi), round(ppi)), quality=settings.jpeg_quality, optimize=True
            )
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        partial.replace(path)
    except OSError as exc:
        raise _write_failure(path, exc) from exc
    finally:
        partial.unlink(missing_ok=True)


def _write_failure(path: Path, exc: OSError) -> NodeResourceError | ConfigError:
    """A full or failing disk is the node's (retry); a path that cannot be a directory or file is the job's."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ESTALE, errno.EROFS):
        return NodeResourceError(f"cannot write {path}: {exc}")
    return ConfigError(f"cannot write {path}: {exc}")
