"""Domain types: DaSSCo GUIDs, the metadata JSON as it arrives on the N-Drive, file records.

Pure: no I/O. Everything here is a msgspec Struct so it crosses boundaries (store, HTTP) without glue.
"""

from integration.domain._files import FileKind, FileRecord, allocation_mb, size_mb
from integration.domain._guid import DasscoGuid
from integration.domain._job_wire import (
    ArsAccess,
    BarcodeView,
    CallbackAnswer,
    DerivativesView,
    DerivativeView,
    FailedBody,
    FailureKind,
    FinishedBody,
    JobTicket,
    OcrView,
    StartedBody,
    TicketDerivative,
    TicketFile,
    split_job_key,
)
from integration.domain._metadata import REQUIRED_FIELDS, Metadata, MetadataDocument, decode_metadata

__all__ = [
    "REQUIRED_FIELDS",
    "ArsAccess",
    "BarcodeView",
    "CallbackAnswer",
    "DasscoGuid",
    "DerivativeView",
    "DerivativesView",
    "FailedBody",
    "FailureKind",
    "FileKind",
    "FileRecord",
    "FinishedBody",
    "JobTicket",
    "Metadata",
    "MetadataDocument",
    "OcrView",
    "StartedBody",
    "TicketDerivative",
    "TicketFile",
    "allocation_mb",
    "decode_metadata",
    "size_mb",
    "split_job_key",
]
