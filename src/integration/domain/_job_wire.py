"""What travels between the daemon and a job's runner on a node: the job ticket the runner fetches, the bodies
of its started / finished / failed callbacks, the daemon's answer, and the daemon's view of each module's result
(only the fields it acts on; a result that does not decode into it is refused with 422 naming the field).

The idempotency key ``<asset GUID>-<job>-<attempt>`` is in the URL of every call, so a callback of an earlier
attempt is recognised and answered without being applied.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "ArsAccess",
    "BarcodeView",
    "CallbackAnswer",
    "DerivativeView",
    "DerivativesView",
    "FailedBody",
    "FailureKind",
    "FinishedBody",
    "JobTicket",
    "OcrView",
    "StartedBody",
    "TicketDerivative",
    "TicketFile",
    "split_job_key",
]

#: What a failure is blamed on: the asset's own data (retrying will not help), the node (retry elsewhere or
#: later), or the node's configuration (every job would fail: a human must fix it).
FailureKind = Literal["asset", "node", "config"]


def split_job_key(key: str) -> tuple[str, str, int]:
    """(GUID, job, attempt) of ``key``; raises ValueError for anything else. Job names have no ``-``."""
    guid, job, attempt = key.rsplit("-", 2)
    if not guid or not job or not attempt.isdigit() or int(attempt) < 1:
        raise ValueError(f"not a job key (<guid>-<job>-<attempt>): {key!r}")
    return guid, job, int(attempt)


class TicketFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    url: str  # in the asset's re-opened share on the file proxy (needs an ARS token)
    crc32: int
    size_bytes: int
    kind: Literal["image", "raw", "metadata", "other"] = "image"


class TicketDerivative(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    name: str
    crc32: int
    size_bytes: int
    upload_url: str  # in the derivative's own share (open once the daemon created it in ARS)


class ArsAccess(msgspec.Struct, frozen=True, kw_only=True):
    """Where the node gets its own ARS token (client credentials; its secret is a file on the cluster)."""

    token_url: str
    client_id: str


class JobTicket(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a runner needs for one attempt of one job (``GET /api/v1/jobs/{key}``)."""

    key: str
    guid: str
    job: str
    module: str
    attempt: int
    institution: str
    collection: str
    files: list[TicketFile]
    metadata: dict[str, Any]
    ars: ArsAccess
    derivatives: list[TicketDerivative] = []
    time_limit_s: float = 1800.0


class StartedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = ""
    pid: int = 0
    job_id: str = ""  # the batch system's id (a Slurm job id), when there is one


class FinishedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    module_version: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    result: dict[str, Any]


class FailedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: str
    kind: FailureKind = "node"
    stderr_tail: str = ""


class CallbackAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The daemon's answer to a callback; a duplicate gets the same answer."""

    key: str
    state: str  # the job's state after the call
    applied: bool  # False: stale (an earlier attempt, or the job already past that point): nothing changed
    note: str = ""


class BarcodeView(msgspec.Struct, frozen=True, kw_only=True):
    """What the daemon reads of a barcode result (the original callback's fields)."""

    barcodes: list[str]
    asset_subject: str | None = None
    MSO: bool = False
    MOS: bool = False
    label: bool = False
    disposable: str | None = None
    needs_review: bool = False
    not_found: bool = False


class OcrView(msgspec.Struct, frozen=True, kw_only=True):
    tags_ocr: str
    languages: list[str] = []


class DerivativeView(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    path: str
    file_format: str
    size_bytes: Annotated[int, msgspec.Meta(ge=0)]
    crc32: Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
    metadata: dict[str, Any] = {}


class DerivativesView(msgspec.Struct, frozen=True, kw_only=True):
    parent_guid: str
    derivatives: list[DerivativeView]
    failed: list[str] = []  # derivatives that could not be made, each with its reason
