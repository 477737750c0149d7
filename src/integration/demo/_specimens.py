"""Generate demo and test specimens on an N-Drive, laid out as workstations leave them.

``<ndrive>/<workstation folder>/<session folder>/`` receives, per asset, ``<guid>.tif`` (the converted image),
``<guid>.dng`` (its raw sibling) and ``<guid>.json`` (metadata template v2_1_0, original-integration.md §3.1).
Every file appears whole (temporary name, then rename) and the JSON comes last, so a watcher that keys on the
JSON never finds an asset with a missing or half-written image.

Everything is deterministic for a given :class:`random.Random` state or seed: the same seed gives the same
GUIDs, barcodes, pictures and bytes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from integration.demo._files import write_atomically, write_bytes_atomically, write_dng, write_plain_tiff
from integration.demo._sheet import render_sheet
from integration.domain import DasscoGuid

__all__ = [
    "DEFAULT_START",
    "DEMO_UTC_OFFSET",
    "TAXA",
    "GeneratedAsset",
    "SpecimenSpec",
    "generate_session",
    "make_barcode",
    "make_guid",
    "metadata_v2_1_0",
    "write_plain_asset",
    "write_specimen",
]

TAXA: tuple[str, ...] = (
    "Anemone nemorosa L.",
    "Carex nigra (L.) Reichard",
    "Ranunculus acris L.",
    "Primula veris L.",
    "Campanula rotundifolia L.",
    "Galium verum L.",
    "Lotus corniculatus L.",
    "Silene dioica (L.) Clairv.",
    "Succisa pratensis Moench",
    "Trifolium pratense L.",
    "Vaccinium myrtillus L.",
    "Geranium sylvaticum L.",
)

DEMO_UTC_OFFSET = timezone(timedelta(hours=2))
"""Offset given to naive capture times (Danish summer time, as in the original example files)."""

DEFAULT_START = datetime(2025, 3, 19, 9, 0, 0, tzinfo=timezone(timedelta(hours=1)))
"""Capture time of the first specimen of a session when the caller gives none (keeps output reproducible)."""

_RANDOM_LIMIT = 1_000_000  # the original create_guid draws the random field from 0..999999


class SpecimenSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What every specimen of a session shares: ARS names written into the JSON and the picture size.

    The ``*_index`` fields are the GUID's numeric institution/collection/workstation fields, which the
    original system looks up in a mapping from the names.
    """

    institution: str = "test-institution"
    collection: str = "test-collection"
    pipeline: str = "test-pipeline"
    workstation: str = "test-workstation"  # workstation_name in the JSON
    digitiser: str = "demo-digitiser"
    preparation_type: str = "sheet"
    width: int = 1200  # TIFF size in px: small, so a demo session is generated in seconds
    height: int = 1800
    compress_tiff: bool = True  # LZW: ~0.4 MB instead of 6.5 MB per sheet, ~35 ms slower
    institution_index: int = 0
    collection_index: int = 0
    workstation_index: int = 0


class GeneratedAsset(msgspec.Struct, frozen=True, kw_only=True):
    """One asset written to a session folder: what is on the sheet and which files hold it."""

    guid: str
    barcode: str  # the specimen barcode drawn ("" on a MOS label photographed on its own)
    taxon: str
    files: tuple[Path, ...]  # json, tif[, dng]
    total_bytes: int
    disposable: str = ""  # a disposable MOS code drawn next to it (a multi-object specimen), or ""

    @property
    def expected_codes(self) -> list[str]:
        """What the barcode job should report: the specimen's barcode, or a MOS label's disposable code."""
        return [self.barcode] if self.barcode else [self.disposable]


def make_guid(
    rng: random.Random,
    taken: datetime,
    *,
    institution_index: int = 0,
    collection_index: int = 0,
    workstation_index: int = 0,
) -> str:
    """A DaSSCo GUID for an original taken at ``taken`` (wall-clock fields), random part drawn from ``rng``."""
    return str(
        DasscoGuid.build(
            taken,
            institution=institution_index,
            collection=collection_index,
            workstation=workstation_index,
            random=rng.randrange(_RANDOM_LIMIT),
        )
    )


def make_barcode(rng: random.Random) -> str:
    """A specimen barcode like ``NHMD-042137``, drawn from ``rng``."""
    return f"NHMD-{rng.randrange(1_000_000):06d}"


def _iso(moment: datetime) -> str:
    """ISO-8601 to the second with a UTC offset; naive times get :data:`DEMO_UTC_OFFSET`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=DEMO_UTC_OFFSET)
    return moment.isoformat(timespec="seconds")


def metadata_v2_1_0(*, guid: str, spec: SpecimenSpec, taken: datetime, file_format: str = "tif") -> dict[str, object]:
    """The metadata JSON of a fresh asset, every v2_1_0 key with the types real N-Drive files carry.

    Fields the workstation leaves for later are present but empty: ``barcode`` is ``[]`` (the barcode job
    fills it), ``status`` and ``asset_subject`` are ``""``, ``parent_guid`` is ``""``, the ARS dates are null.
    """
    return {
        "asset_created_by": "",
        "asset_deleted_by": "",
        "asset_guid": guid,
        "asset_pid": "",
        "asset_subject": "",
        "date_asset_taken": _iso(taken),
        "asset_updated_by": "",
        "audited": False,
        "audited_by": "",
        "audited_date": None,
        "barcode": [],
        "collection": spec.collection,
        "date_asset_created": None,
        "date_asset_deleted": None,
        "date_asset_finalised": None,
        "date_asset_updated": None,
        "date_metadata_created": _iso(taken + timedelta(seconds=20)),
        "date_metadata_updated": "",
        "date_metadata_uploaded": "",
        "digitiser": spec.digitiser,
        "external_publisher": [],
        "file_format": file_format,
        "funding": "DaSSCo",
        "institution": spec.institution,
        "metadata_created_by": "IngestionClient",
        "metadata_updated_by": "",
        "metadata_uploaded_by": "",
        "multispecimen": False,
        "parent_guid": "",
        "payload_type": ["image"],
        "pipeline_name": spec.pipeline,
        "preparation_type": spec.preparation_type,
        "pushed_to_specify_date": None,
        "restricted_access": [],
        "specimen_pid": "",
        "status": "",
        "tags": {"metadataTemplate": "v2_1_0"},
        "workstation_name": spec.workstation,
    }


def _write_metadata(path: Path, metadata: dict[str, object]) -> int:
    """Write the metadata JSON indented like the ingestion client does; returns its size."""
    return write_bytes_atomically(path, msgspec.json.format(msgspec.json.encode(metadata), indent=2))


def _guid_for(spec: SpecimenSpec, rng: random.Random, taken: datetime) -> str:
    return make_guid(
        rng,
        taken,
        institution_index=spec.institution_index,
        collection_index=spec.collection_index,
        workstation_index=spec.workstation_index,
    )


def write_specimen(
    session_dir: Path,
    *,
    spec: SpecimenSpec,
    rng: random.Random,
    taken: datetime,
    disposable: str = "",
    label: bool = False,
) -> GeneratedAsset:
    """Draw one herbarium sheet and write ``<guid>.tif``, ``<guid>.dng`` and, last, ``<guid>.json``.

    ``disposable``: a MOS code drawn beside the specimen's barcode; with ``label`` the picture is that MOS label
    on its own (no specimen, no specimen barcode). ``session_dir`` must exist. Each file is written under a
    hidden temporary name and renamed into place.
    """
    guid = _guid_for(spec, rng, taken)
    barcode = make_barcode(rng)
    if label:
        if not disposable:
            raise ValueError("a MOS label needs its disposable code")
        barcode = ""
    taxon = rng.choice(TAXA)
    image = render_sheet(
        barcode=barcode, taxon=taxon, institution=spec.institution, width=spec.width, height=spec.height, rng=rng,
        disposable=disposable,
    )  # fmt: skip
    tif, dng, json = (session_dir / f"{guid}.{ext}" for ext in ("tif", "dng", "json"))
    compression = "tiff_lzw" if spec.compress_tiff else None
    total = write_atomically(tif, lambda temp: image.save(temp, format="TIFF", compression=compression, dpi=(300, 300)))
    write_dng(image, dng)
    total += dng.stat().st_size
    total += _write_metadata(json, metadata_v2_1_0(guid=guid, spec=spec, taken=taken))
    return GeneratedAsset(
        guid=guid, barcode=barcode, taxon=taxon, files=(json, tif, dng), total_bytes=total, disposable=disposable
    )


def generate_session(
    ndrive: Path,
    workstation_folder: str,
    session: str,
    count: int,
    *,
    spec: SpecimenSpec,
    seed: int,
    start: datetime | None = None,
    mos_specimens: int = 0,
) -> list[GeneratedAsset]:
    """Fill ``<ndrive>/<workstation_folder>/<session>/`` with ``count`` specimens; the same seed, same files.

    Capture times start at ``start`` (default :data:`DEFAULT_START`) and advance 20-90 s per specimen, so
    every GUID of the session has its own second and GUIDs are unique within it. With ``mos_specimens`` N, the
    last N + 1 assets are one multi-object specimen: its label photographed on its own, then N specimens, all
    showing the same disposable code (the other assets are the same as without).
    """
    if mos_specimens and mos_specimens + 1 > count:
        raise ValueError(f"a MOS group of {mos_specimens} specimens and its label needs {mos_specimens + 1} assets")
    session_dir = ndrive / workstation_folder / session
    session_dir.mkdir(parents=True, exist_ok=True)
    session_rng = random.Random(seed)
    disposable = f"MOS-{random.Random(f'mos-{seed}').randrange(1_000_000):06d}" if mos_specimens else ""
    first_mos = count - mos_specimens - 1 if mos_specimens else count
    taken = start if start is not None else DEFAULT_START
    assets = []
    for index in range(count):
        specimen_rng = random.Random(session_rng.getrandbits(64))
        code = disposable if index >= first_mos else ""
        assets.append(write_specimen(session_dir, spec=spec, rng=specimen_rng, taken=taken, disposable=code,
                                     label=index == first_mos))  # fmt: skip
        taken += timedelta(seconds=session_rng.randint(20, 90))
    return assets


def write_plain_asset(
    session_dir: Path, *, guid: str, spec: SpecimenSpec, image_bytes: int, taken: datetime, rng: random.Random
) -> GeneratedAsset:
    """Fast path for benchmarks: ``<guid>.tif`` of exactly ``image_bytes`` (random grey pixels) and its JSON.

    No raw sibling and no drawing: about 2 ms per MB including the JSON. The barcode and taxon are drawn from ``rng``
    for the record only; they are not in the picture.
    """
    tif, json = session_dir / f"{guid}.tif", session_dir / f"{guid}.json"
    barcode, taxon = make_barcode(rng), rng.choice(TAXA)
    total = write_plain_tiff(tif, image_bytes, rng)
    total += _write_metadata(json, metadata_v2_1_0(guid=guid, spec=spec, taken=taken))
    return GeneratedAsset(guid=guid, barcode=barcode, taxon=taxon, files=(json, tif), total_bytes=total)
