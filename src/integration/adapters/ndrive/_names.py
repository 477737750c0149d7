"""File-name rules of a session folder: what is ignored, what is unsafe, how a name splits into stem and type."""

from __future__ import annotations

import unicodedata

__all__ = [
    "NOTE_SUFFIX",
    "SESSION_NOTE_NAME",
    "extension_equivalents",
    "is_ignored",
    "is_own_note",
    "note_file_name",
    "printable",
    "split_name",
    "unsafe_name_reason",
]

#: Our error notes are ``<name>.error.txt`` next to the files they are about.
NOTE_SUFFIX = ".error.txt"
_NOTE_TMP_SUFFIX = NOTE_SUFFIX + ".tmp"
_SESSION_NOTE_STEM = "_session"
#: The note about a session folder as a whole; no asset's or file's note is ever given this name.
SESSION_NOTE_NAME = _SESSION_NOTE_STEM + NOTE_SUFFIX
_MAX_NOTE_STEM_CHARS = 200  # keeps <stem>.error.txt under the usual 255-byte name limit for ASCII names

#: Extensions that name the same format.
_EQUIVALENT = {"tif": "tiff", "tiff": "tif", "jpg": "jpeg", "jpeg": "jpg"}


def is_own_note(name: str) -> bool:
    """True for our error notes and their temporary files while being written."""
    return name.lower().endswith(NOTE_SUFFIX) or (name.startswith(".") and name.endswith(_NOTE_TMP_SUFFIX))


def is_ignored(name: str) -> bool:
    """True for hidden dot-files and our own notes: they are neither assets nor rejected."""
    return name.startswith(".") or is_own_note(name)


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` is not acceptable as an asset file name, or None when it is."""
    if ".." in name:
        return "contains '..'"
    if "\\" in name:
        return "contains a backslash (\\)"
    categories = {unicodedata.category(char) for char in name}
    if "Cc" in categories:
        return "contains a control character"
    if "Cs" in categories:
        return "contains bytes that are not valid UTF-8 text"
    return None


def split_name(name: str) -> tuple[str, str]:
    """``(stem, extension)`` split at the last dot; the extension is lower-case and ``""`` when there is none."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, extension.lower()


def extension_equivalents(extension: str) -> frozenset[str]:
    """``extension`` and the extensions naming the same format (tif and tiff, jpg and jpeg)."""
    extension = extension.lower()
    other = _EQUIVALENT.get(extension)
    return frozenset({extension, other}) if other else frozenset({extension})


def printable(name: str) -> str:
    """``name`` with control characters, backslashes and undecodable bytes escaped, for notes and messages."""
    return "".join(char if char.isprintable() and char != "\\" else _escape(char) for char in name)


def note_file_name(name: str) -> str:
    """The file name of the note about ``name``: unsafe characters replaced, never hidden, not too long, and
    never :data:`SESSION_NOTE_NAME`."""
    safe = "".join(char if char.isprintable() and char not in "\\/" else "_" for char in name)
    safe = safe.lstrip(".")[:_MAX_NOTE_STEM_CHARS] or "_"
    if safe.lower() == _SESSION_NOTE_STEM:  # reserved for the session's own note (N-Drive shares ignore case)
        safe += "_"
    return safe + NOTE_SUFFIX


def _escape(char: str) -> str:
    return char.encode("unicode_escape", errors="backslashreplace").decode("ascii")
