"""Checking one asset: the files of a session folder that share a stem.

Each check raises :class:`Rejected` with a reason; :func:`validate_group` turns the first one into the asset's
:class:`IntakeRejection`. Files that are not part of the asset are rejected one by one and never block it.
"""

from __future__ import annotations

from collections.abc import Sequence

from integration.adapters.ndrive._content import MAX_METADATA_BYTES, check_content, read_small_file
from integration.adapters.ndrive._errors import Rejected, unexpected_as_rejection
from integration.adapters.ndrive._model import AssetCandidate, IntakeRejection, IntakeRules
from integration.adapters.ndrive._names import extension_equivalents, printable
from integration.adapters.ndrive._scan import SessionFile
from integration.domain import DasscoGuid, Metadata, MetadataDocument, decode_metadata
from integration.errors import InvalidGuid, MetadataError

__all__ = ["IMAGE_EXTENSIONS", "validate_group"]

#: Converted-image types an asset may have besides the raw types of the rules.
IMAGE_EXTENSIONS = frozenset({"tif", "tiff", "jpg", "jpeg", "png"})
_AGAIN = "upload the asset again in a new session folder"
_UNEXPECTED_ADVICE = (
    f"Its files were left as they are. Check that they are complete and were exported correctly, then {_AGAIN}; "
    "if this happens again, tell the data manager and quote this note."
)


def validate_group(
    stem: str, files: Sequence[SessionFile], rules: IntakeRules
) -> tuple[AssetCandidate | None, list[IntakeRejection]]:
    """The asset named ``stem`` if its files pass every check, and a rejection for each file or problem.

    Anything unexpected raised while examining the group becomes one rejection of all its files ("<stem> could
    not be examined: ..."). Raises only :class:`~integration.errors.NdriveUnavailable` (the mount fails) and
    :class:`~integration.errors.TransientError`: then the whole session is tried again later.
    """
    try:
        with unexpected_as_rejection(printable(stem), _UNEXPECTED_ADVICE):
            return _validate(stem, files, rules)
    except Rejected as exc:
        paths = tuple(f.path for f in files)
        return None, [IntakeRejection(name=stem, reason=exc.message, paths=paths, guid=_guid_or_none(stem))]


def _validate(
    stem: str, files: Sequence[SessionFile], rules: IntakeRules
) -> tuple[AssetCandidate | None, list[IntakeRejection]]:
    known = {"json"} | IMAGE_EXTENSIONS | rules.raw_extensions
    rejections = [_file_rejection(f, _unknown_type_reason(f, rules)) for f in files if f.extension not in known]
    members = [f for f in files if f.extension in known]
    if not members:
        return None, rejections
    try:
        candidate = _build_candidate(stem, members, rules)
    except Rejected as exc:
        paths = tuple(f.path for f in members)
        rejections.append(IntakeRejection(name=stem, reason=exc.message, paths=paths, guid=_guid_or_none(stem)))
        return None, rejections
    used = {path for path, _ in candidate.files()}
    rejections.extend(_file_rejection(f, _not_part_reason(f, candidate)) for f in members if f.path not in used)
    return candidate, rejections


def _build_candidate(stem: str, members: Sequence[SessionFile], rules: IntakeRules) -> AssetCandidate:
    _parse_guid(stem, members)
    json_file = _metadata_file(stem, members)
    document = _read_metadata(json_file)
    metadata = document.metadata
    _check_guid_matches(stem, metadata.asset_guid)
    _check_known(stem, metadata, rules)
    image = _image_file(stem, members, metadata.file_extension)
    check_content(image.path, image.extension, image.size)
    raws = [f for f in members if f.extension in rules.raw_extensions and f is not image]
    for raw in raws:
        check_content(raw.path, raw.extension, raw.size)
    return AssetCandidate(
        guid=stem,
        metadata=document,
        json_path=json_file.path,
        image_path=image.path,
        raw_paths=tuple(raw.path for raw in raws),
    )


def _parse_guid(stem: str, members: Sequence[SessionFile]) -> None:
    try:
        DasscoGuid.parse(stem)
    except InvalidGuid as exc:
        raise Rejected(
            f"{_names(members)} cannot be imported because the name is not a valid asset GUID: {exc.message}. "
            f"Asset files must be named <GUID>.json, <GUID>.tif and so on, as the ingestion client names them; "
            f"{_AGAIN}."
        ) from exc


def _metadata_file(stem: str, members: Sequence[SessionFile]) -> SessionFile:
    found = [f for f in members if f.extension == "json"]
    if not found:
        raise Rejected(
            f"No metadata file {stem}.json was found for {_names(members)}. Every asset needs its metadata JSON "
            f"(the ingestion client creates it); {_AGAIN} together with its JSON."
        )
    if len(found) > 1:
        raise Rejected(f"There are several metadata files for one asset ({_names(found)}); keep one and {_AGAIN}.")
    return found[0]


def _read_metadata(json_file: SessionFile) -> MetadataDocument:
    name = printable(json_file.path.name)
    if json_file.size == 0:
        raise Rejected(f"The metadata file {name} is empty (0 bytes). Create it again and {_AGAIN}.")
    data = read_small_file(json_file.path, MAX_METADATA_BYTES)
    try:
        return decode_metadata(data)
    except MetadataError as exc:
        raise Rejected(
            f"The metadata file {name} cannot be used: {exc.message}. Correct it (or create it again with the "
            f"ingestion client) and {_AGAIN}."
        ) from exc


def _check_guid_matches(stem: str, asset_guid: str) -> None:
    if asset_guid != stem:
        raise Rejected(
            f"The metadata says asset_guid '{printable(asset_guid)}', but the file is named {stem}.json; the two "
            f"must be the same. Correct asset_guid or the file names and {_AGAIN}."
        )


def _check_known(stem: str, metadata: Metadata, rules: IntakeRules) -> None:
    problems = []
    if metadata.pipeline_name not in rules.pipelines:
        problems.append(_unknown("pipeline_name", metadata.pipeline_name, rules.pipelines))
    if metadata.workstation_name not in rules.workstations:
        problems.append(_unknown("workstation_name", metadata.workstation_name, rules.workstations))
    if rules.institutions and metadata.institution not in rules.institutions:
        problems.append(_unknown("institution", metadata.institution, rules.institutions))
    formats = IMAGE_EXTENSIONS | rules.raw_extensions
    if metadata.file_extension not in formats:
        problems.append(_unknown("file_format", metadata.file_format, formats))
    if problems:
        raise Rejected(
            f"The metadata of {stem} names something this server does not know: {'; '.join(problems)}. Correct "
            f"the metadata (or ask the data manager to add it to the integration configuration) and {_AGAIN}."
        )


def _unknown(field: str, value: str, known: frozenset[str]) -> str:
    return f"{field} '{printable(value)}' is not accepted here (accepted: {', '.join(sorted(known)) or 'none'})"


def _image_file(stem: str, members: Sequence[SessionFile], file_format: str) -> SessionFile:
    found = [f for f in members if f.extension in extension_equivalents(file_format)]
    if not found:
        raise Rejected(
            f"No image file {stem}.{file_format} was found next to the metadata {stem}.json (its file_format is "
            f"'{file_format}'; found only {_names(members)}). Add the image named {stem}.{file_format}, or correct "
            f"file_format, and {_AGAIN}."
        )
    if len(found) > 1:
        raise Rejected(f"Several files could be the image of {stem} ({_names(found)}); keep one and {_AGAIN}.")
    return found[0]


def _unknown_type_reason(file: SessionFile, rules: IntakeRules) -> str:
    kind = f"its type '.{file.extension}' is not" if file.extension else "it has no type (extension); it must be"
    raws = ", ".join(f".{ext}" for ext in sorted(rules.raw_extensions))
    images = ", ".join(f".{ext}" for ext in sorted(IMAGE_EXTENSIONS))
    return (
        f"{printable(file.path.name)} is not an asset file: {kind} one of .json, the image types ({images}) "
        f"or the raw types ({raws}). It was not imported; remove it or move it elsewhere. Other files in this "
        "folder are not affected."
    )


def _not_part_reason(file: SessionFile, candidate: AssetCandidate) -> str:
    return (
        f"{printable(file.path.name)} is not part of asset {candidate.guid}: its metadata names "
        f"{printable(candidate.image_path.name)} as the image (file_format "
        f"'{printable(candidate.metadata.metadata.file_format)}'). It was not imported; remove it or move it "
        "elsewhere. The asset itself is imported without it."
    )


def _file_rejection(file: SessionFile, reason: str) -> IntakeRejection:
    return IntakeRejection(name=file.path.name, reason=reason, paths=(file.path,), guid=None)


def _guid_or_none(stem: str) -> str | None:
    try:
        return str(DasscoGuid.parse(stem))
    except InvalidGuid:
        return None


def _names(files: Sequence[SessionFile]) -> str:
    return ", ".join(printable(f.path.name) for f in files)
