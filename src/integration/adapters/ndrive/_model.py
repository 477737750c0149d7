"""What the N-Drive adapter hands to the watcher: snapshots, asset candidates, rejections, and the rules."""

from __future__ import annotations

from pathlib import Path

import msgspec

from integration.config import Config
from integration.domain import FileKind, MetadataDocument

__all__ = [
    "AssetCandidate",
    "FileState",
    "IntakeRejection",
    "IntakeRules",
    "SessionPlan",
    "SessionSnapshot",
]


class FileState(msgspec.Struct, frozen=True):
    """One entry of a session folder as ``lstat`` saw it (symlinks not followed)."""

    name: str
    size: int
    mtime_ns: int


class SessionSnapshot(msgspec.Struct, frozen=True):
    """Every entry of a session folder, sorted by name: two equal snapshots mean nothing changed in between."""

    entries: tuple[FileState, ...]


class AssetCandidate(msgspec.Struct, frozen=True):
    """An asset whose files passed every intake check and may be copied in."""

    guid: str
    metadata: MetadataDocument
    json_path: Path
    image_path: Path
    raw_paths: tuple[Path, ...]

    def files(self) -> list[tuple[Path, FileKind]]:
        """Every file of the asset with its kind: the JSON, the image, then the raw files."""
        return [
            (self.json_path, FileKind.METADATA),
            (self.image_path, FileKind.IMAGE),
            *((path, FileKind.RAW) for path in self.raw_paths),
        ]


class IntakeRejection(msgspec.Struct, frozen=True):
    """Files that are not imported, and why, in words a digitiser can act on.

    ``name`` is the asset's stem, or the file's own name when only that file is rejected; the note about it is
    ``<session>/<name>.error.txt``. ``paths`` are left untouched. ``guid`` is set only when a whole asset with a
    valid GUID is rejected; a rejection of a single file (a stray next to a good asset) has ``guid=None``.
    """

    name: str
    reason: str
    paths: tuple[Path, ...]
    guid: str | None


class SessionPlan(msgspec.Struct, frozen=True):
    """The outcome of checking one session folder: what may be imported and what may not.

    ``folder_problem`` is set, with a plain reason, when the folder as a whole could not be examined; then there
    are no candidates and no rejections: import nothing, leave the folder as it is (no ``imported_`` rename) and
    write the reason with :func:`write_session_note`.
    """

    candidates: tuple[AssetCandidate, ...]
    rejections: tuple[IntakeRejection, ...]
    folder_problem: str | None = None


class IntakeRules(msgspec.Struct, frozen=True, kw_only=True):
    """What the intake accepts. ``institutions`` empty accepts any; ``raw_extensions`` are lower-case, no dot."""

    ndrive_root: Path
    pipelines: frozenset[str]
    workstations: frozenset[str]
    institutions: frozenset[str]
    raw_extensions: frozenset[str]

    @classmethod
    def from_config(cls, config: Config) -> IntakeRules:
        """The rules of ``config``: its N-Drive root, pipelines, workstation folders and intake lists."""
        return cls(
            ndrive_root=Path(config.ndrive.root),
            pipelines=frozenset(config.pipelines),
            workstations=frozenset(config.ndrive.workstations),
            institutions=frozenset(config.intake.institutions),
            raw_extensions=frozenset(ext.strip().lower().lstrip(".") for ext in config.intake.raw_extensions),
        )
