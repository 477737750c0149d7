"""The original HPC API (original-integration.md §6.1) on the same job callbacks, so the existing cluster
scripts keep working once they send a bearer token. Request bodies are unchanged; answers keep the original's
shape: 200 with ``null`` on success (also for a stale or duplicate call, which changes nothing), 422
``{"error": ...}`` for a domain failure (an unknown asset or job, an unknown subject) or a body that does not
decode.

The original's calls carry no attempt number: each is matched to the job's current attempt by (asset GUID,
job name, job_id): the first ``queue_job``/``start_job`` records the batch job's id, and a call naming another
id is a late call of an earlier attempt, answered and not applied. Its job names map onto our modules
(``ORIGINAL_JOBS``); the original's two jobs ``cropping`` and ``derivative`` are one job here
(crop_derivatives), finished by ``update_asset(derivative, DONE)`` with the derivatives announced before it by
``/derivative`` + ``/derivative_file_info`` (and the failures by ``/fail_derivative_creation``). Those
announcements are kept in memory until then: after a daemon restart the job is run again and announces them
again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from integration.api._jobs import CallbackError, JobCallbacks
from integration.domain import FailedBody, FinishedBody, StartedBody
from integration.store import JobRecord

__all__ = ["ORIGINAL_JOBS", "original_routes"]

#: The original's job names -> our modules (our own job names are accepted as they are).
ORIGINAL_JOBS = {
    "assetLoader": "asset_loader",
    "barcode": "barcode",
    "ocr": "ocr",
    "cropping": "crop_derivatives",
    "derivative": "crop_derivatives",
    "uploader": "derivative_upload",
    "clean_up": "cleanup",
}

_PREFIX = "/dev/api/v1"
#: job ids that name no batch job (the original's -9 "none yet" and -1 "queue full")
_NO_ID = frozenset({"", "-9", "-1"})


class JobEvent(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    job_name: str
    job_id: str | int = ""
    timestamp: str | None = None


class FailedJob(JobEvent, frozen=True, kw_only=True):
    fail_status: Literal["RETRY", "ERROR", "PAUSED"]
    hpc_message: str | None = None
    hpc_exception: str | None = None


class UpdateAsset(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    job: str
    status: str
    data: dict[str, Any] = {}


class Barcode(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    job: str
    status: str
    barcodes: list[str]
    asset_subject: str
    MSO: bool = False
    MOS: bool = False
    label: bool = False
    disposable: str | None = None


class DerivativeFileInfo(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    name: str
    type: str = ""
    check_sum: int
    file_size: int  # MB, as the original sends it


class FailDerivative(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    ppi: int
    note: str | None = None


class _Staged(msgspec.Struct, kw_only=True):
    """What the original's derivative calls announced for one parent, until its derivative job is DONE."""

    metadata: dict[str, dict[str, Any]] = {}
    files: dict[str, DerivativeFileInfo] = {}
    failed: list[str] = []
    uploaded: set[str] = set()


Handler = Callable[[Request, str], Awaitable[Response]]
Wrap = Callable[[Any, Handler], Callable[[Request], Awaitable[Response]]]


def _null() -> Response:
    return Response(b"null", media_type="application/json")


def original_routes(deps: Any, authenticated: Wrap, limit: int) -> list[BaseRoute]:
    from integration.api._app import decode_body, read_body  # one body reader for both APIs

    callbacks: JobCallbacks = deps.callbacks
    staged: dict[str, _Staged] = {}

    async def body(request: Request, kind: type[Any]) -> Any:
        return decode_body(await read_body(request, limit), kind)

    async def record_of(guid: str, job: str) -> JobRecord:
        module = ORIGINAL_JOBS.get(job)
        try:
            return await callbacks.current(guid, job=job)
        except CallbackError:
            if module is None:
                raise
            return await callbacks.current(guid, module=module)

    async def key_of(guid: str, job: str) -> str:
        return (await record_of(guid, job)).key

    async def matching_key(event: JobEvent) -> str | None:
        """The current attempt's key, or None when ``job_id`` names another batch job (a late call of an
        earlier attempt: answered, not applied). The first queue_job/start_job records the id."""
        record = await record_of(event.guid, event.job_name)
        job_id = str(event.job_id)
        if record.executor_id and job_id not in _NO_ID and job_id != record.executor_id:
            return None
        return record.key

    def query_guid(request: Request) -> str:
        guid = request.query_params.get("asset_guid", "")
        if not guid:
            raise CallbackError(422, "asset_guid: a query parameter is required")
        return guid

    async def queue_job(request: Request, caller: str) -> Response:
        event: JobEvent = await body(request, JobEvent)
        key = await matching_key(event)
        if key is not None:
            await callbacks.queued(key, executor_id=str(event.job_id), caller=caller)
        return _null()

    async def start_job(request: Request, caller: str) -> Response:
        event: JobEvent = await body(request, JobEvent)
        key = await matching_key(event)
        if key is not None:
            job_id = "" if str(event.job_id) in _NO_ID else str(event.job_id)
            await callbacks.started(key, StartedBody(host="", job_id=job_id), caller=caller)
        return _null()

    async def failed_job(request: Request, caller: str) -> Response:
        event: FailedJob = await body(request, FailedJob)
        if event.fail_status == "PAUSED":  # the original did nothing either: the queue was busy
            return _null()
        kind: Literal["asset", "node"] = "asset" if event.fail_status == "ERROR" else "node"
        reason = event.hpc_message or f"the HPC reported {event.fail_status}"
        failed = FailedBody(reason=reason, kind=kind, stderr_tail=event.hpc_exception or "")
        key = await matching_key(event)
        if key is not None:
            await callbacks.failed(key, failed, caller=caller)
        return _null()

    async def finish(guid: str, job: str, result: dict[str, Any], caller: str) -> None:
        key = await key_of(guid, job)
        await callbacks.finished(key, FinishedBody(module_version="original-api", result=result), caller=caller)

    async def not_done(guid: str, job: str, status: str, caller: str) -> None:
        key = await key_of(guid, job)
        if status in ("RUNNING", "STARTING"):
            await callbacks.started(key, StartedBody(), caller=caller)
        elif status in ("FAILED", "ERROR", "RETRY"):
            kind: Literal["asset", "node"] = "asset" if status == "ERROR" else "node"
            await callbacks.failed(key, FailedBody(reason=f"the HPC reported {status}", kind=kind), caller=caller)

    async def barcode(request: Request, caller: str) -> Response:
        call: Barcode = await body(request, Barcode)
        if call.status != "DONE":
            await not_done(call.guid, call.job, call.status, caller)
            return _null()
        subjects = callbacks.subjects
        if call.asset_subject.strip().lower() not in subjects:
            raise CallbackError(
                422, f"asset_subject: unknown subject {call.asset_subject!r} (known: {', '.join(subjects)})"
            )
        result = {"barcodes": call.barcodes, "asset_subject": call.asset_subject, "MSO": call.MSO, "MOS": call.MOS,
                  "label": call.label, "disposable": call.disposable}  # fmt: skip
        await finish(call.guid, call.job, result, caller)
        return _null()

    async def update_asset(request: Request, caller: str) -> Response:
        call: UpdateAsset = await body(request, UpdateAsset)
        if call.status != "DONE":
            await not_done(call.guid, call.job, call.status, caller)
            return _null()
        if call.job == "cropping":  # one job here with "derivative": that one's DONE finishes it
            return _null()
        result: dict[str, Any] = dict(call.data)
        if ORIGINAL_JOBS.get(call.job) == "ocr" or call.job == "ocr":
            tags = call.data.get("tags") if isinstance(call.data.get("tags"), dict) else {}
            result = {"tags_ocr": str((tags or {}).get("ocr", call.data.get("tags_ocr", "")))}
        elif ORIGINAL_JOBS.get(call.job) == "crop_derivatives":
            result = _derivatives_result(call.guid, staged.pop(call.guid, _Staged()))
        await finish(call.guid, call.job, result, caller)
        return _null()

    async def asset_ready(request: Request, caller: str) -> Response:
        await finish(query_guid(request), "assetLoader", {}, caller)
        return _null()

    async def asset_clean_up(request: Request, caller: str) -> Response:
        await finish(query_guid(request), "clean_up", {}, caller)
        return _null()

    async def derivative(request: Request, caller: str) -> Response:
        metadata = await body(request, dict[str, Any])
        parent, guid = metadata.get("parent_guid"), metadata.get("asset_guid")
        if not isinstance(parent, str) or not isinstance(guid, str) or not parent or not guid:
            raise CallbackError(422, "parent_guid and asset_guid: both are required")
        await callbacks.job(await key_of(parent, "derivative"))  # the parent and its job exist
        staged.setdefault(parent, _Staged()).metadata[guid] = metadata
        return _null()

    async def derivative_file_info(request: Request, caller: str) -> Response:
        info: DerivativeFileInfo = await body(request, DerivativeFileInfo)
        parent = next((p for p, s in staged.items() if info.guid in s.metadata), None)
        if parent is None:
            raise CallbackError(422, f"guid: derivative {info.guid} was not announced by /derivative")
        staged[parent].files[info.guid] = info
        return _null()

    async def fail_derivative_creation(request: Request, caller: str) -> Response:
        call: FailDerivative = await body(request, FailDerivative)
        await callbacks.job(await key_of(call.guid, "derivative"))
        staged.setdefault(call.guid, _Staged()).failed.append(f"No derivative for ppi {call.ppi}" +
                                                              (f": {call.note}" if call.note else ""))  # fmt: skip
        return _null()

    async def derivative_uploaded(request: Request, caller: str) -> Response:
        guid = query_guid(request)
        parent = await callbacks.parent_of(guid)
        entry = staged.setdefault(f"uploaded:{parent}", _Staged())
        entry.uploaded.add(guid)
        if entry.uploaded >= set(await callbacks.awaiting_upload(parent)):
            staged.pop(f"uploaded:{parent}", None)
            await finish(parent, "uploader", {"uploaded": sorted(entry.uploaded)}, caller)
        return _null()

    async def httplink(request: Request, caller: str) -> Response:
        return Response(msgspec.json.encode({"link": await callbacks.image_link(query_guid(request))}),
                        media_type="application/json")  # fmt: skip

    async def metadata_asset(request: Request, caller: str) -> Response:
        guid = query_guid(request)
        document = await callbacks.metadata(guid)
        return Response(msgspec.json.encode({"_id": guid, **document}), media_type="application/json")

    async def yo(request: Request) -> Response:
        return PlainTextResponse("yo")

    def unprocessable(handler: Handler) -> Handler:
        async def wrapped(request: Request, caller: str) -> Response:
            try:
                return await handler(request, caller)
            except CallbackError as exc:  # the original answered every domain failure with 422
                status = 422 if exc.status in (404, 409) else exc.status
                return Response(msgspec.json.encode({"error": exc.message}), status_code=status,
                                media_type="application/json")  # fmt: skip

        return wrapped

    posts = {
        "derivative": derivative,
        "derivative_file_info": derivative_file_info,
        "derivative_uploaded": derivative_uploaded,
        "update_asset": update_asset,
        "barcode": barcode,
        "queue_job": queue_job,
        "start_job": start_job,
        "failed_job": failed_job,
        "asset_ready": asset_ready,
        "asset_clean_up": asset_clean_up,
        "fail_derivative_creation": fail_derivative_creation,
    }
    gets = {"httplink": httplink, "metadata_asset": metadata_asset}
    routes: list[BaseRoute] = [Route("/dev/yo", yo, methods=["GET"])]
    routes += [
        Route(f"{_PREFIX}/{name}", authenticated(deps, unprocessable(h)), methods=["POST"]) for name, h in posts.items()
    ]
    routes += [
        Route(f"{_PREFIX}/{name}", authenticated(deps, unprocessable(h)), methods=["GET"]) for name, h in gets.items()
    ]
    return routes


def _derivatives_result(parent: str, entry: _Staged) -> dict[str, Any]:
    derivatives = []
    for guid, metadata in sorted(entry.metadata.items()):
        info = entry.files.get(guid)
        if info is None:
            entry.failed.append(f"derivative {guid}: no /derivative_file_info arrived for it")
            continue
        fmt = str(metadata.get("file_format") or info.type or info.name.rsplit(".", 1)[-1])
        size = info.file_size * 1_000_000  # the original sends megabytes: an upper bound
        derivatives.append({"guid": guid, "path": info.name, "file_format": fmt, "size_bytes": size,
                            "crc32": info.check_sum, "metadata": metadata})  # fmt: skip
    return {"parent_guid": parent, "derivatives": derivatives, "failed": entry.failed}
