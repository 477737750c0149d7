"""Domain types: DaSSCo GUIDs, the metadata JSON as it arrives on the N-Drive, file records.

Pure: no I/O. Everything here is a msgspec Struct so it crosses boundaries (store, HTTP) without glue.
"""

from integration.domain._files import FileKind, FileRecord, allocation_mb, size_mb
from integration.domain._guid import DasscoGuid
from integration.domain._metadata import REQUIRED_FIELDS, Metadata, MetadataDocument, decode_metadata

__all__ = [
    "REQUIRED_FIELDS",
    "DasscoGuid",
    "FileKind",
    "FileRecord",
    "Metadata",
    "MetadataDocument",
    "allocation_mb",
    "decode_metadata",
    "size_mb",
]
