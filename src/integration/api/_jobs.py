"""The job callbacks, whichever route they came by (``/api/v1`` or the original ``/dev/api/v1``): hand out a
ticket, and apply started / finished / failed to the job's current attempt.

Every callback is idempotent and order-tolerant: the job machine accepts "finished" before "started"; a
callback the machine refuses in the job's state (a duplicate, one after the job settled) or of an earlier
attempt is answered 200 with ``applied: false`` and the job's state, and changes nothing. An applied callback
wakes the asset's actor at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from integration.adapters.ars import ArsClient
from integration.config import Config
from integration.domain import (
    ArsAccess,
    BarcodeView,
    CallbackAnswer,
    DerivativesView,
    FailedBody,
    FileKind,
    FinishedBody,
    JobTicket,
    OcrView,
    StartedBody,
    TicketDerivative,
    TicketFile,
    split_job_key,
)
from integration.errors import IllegalTransition, StaleAttempt, UnknownJob
from integration.state_machines import JOB_ACTIVE_STATES, DerivativeState, JobState, JobTrigger
from integration.store import JobRecord, Store

__all__ = ["RESULT_VIEWS", "CallbackError", "JobCallbacks"]

log = structlog.get_logger()

#: What a module's result must decode into before the daemon takes it (others: any JSON object).
RESULT_VIEWS: dict[str, type[msgspec.Struct]] = {
    "barcode": BarcodeView,
    "ocr": OcrView,
    "crop_derivatives": DerivativesView,
}


class CallbackError(Exception):
    """An HTTP answer other than 200: ``status`` and the error text (naming the field for 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class JobCallbacks:
    def __init__(
        self, *, store: Store, config: Config, ars: ArsClient, wake: Callable[[str, str], Awaitable[None]]
    ) -> None:
        self._store = store
        self._config = config
        self._ars = ars
        self._wake = wake
        self.applied = 0
        self.stale = 0

    async def job(self, key: str) -> JobRecord:
        """The job of ``key`` as stored (any attempt); CallbackError 404 when there is none."""
        try:
            guid, job, _ = split_job_key(key)
        except ValueError as exc:
            raise CallbackError(404, str(exc)) from exc
        for record in await self._store.jobs.of_asset(guid):
            if record.job == job:
                return record
        raise CallbackError(404, f"no job {job!r} for asset {guid}")

    async def ticket(self, key: str) -> JobTicket:
        record = await self.job(key)
        if record.key != key:
            raise CallbackError(409, f"{key} is an earlier attempt; the job is at attempt {record.attempt}")
        if record.state not in JOB_ACTIVE_STATES and record.state is not JobState.LOST:  # a lost one is taken back
            raise CallbackError(409, f"job {key} is {record.state.value}: nothing to run")
        asset = await self._store.assets.get(record.guid)
        raw = await self._store.assets.metadata_json(record.guid)
        if asset is None or raw is None:
            raise CallbackError(404, f"asset {record.guid} is not known")
        files = [
            TicketFile(
                name=f.record.name,
                url=self._ars.file_url(
                    institution=asset.institution, collection=asset.collection, guid=asset.guid, name=f.record.name
                ),
                crc32=f.record.crc32,
                size_bytes=f.record.size,
                kind="image"
                if f.record.kind is FileKind.IMAGE
                else "raw"
                if f.record.kind is FileKind.RAW
                else "other",
            )
            for f in await self._store.assets.files(record.guid)
            if f.record.kind is not FileKind.METADATA
        ]
        derivatives = [
            TicketDerivative(
                guid=d.guid,
                name=d.name,
                crc32=d.crc32,
                size_bytes=d.size_bytes,
                upload_url=self._ars.file_url(
                    institution=asset.institution, collection=asset.collection, guid=d.guid, name=d.name
                ),
            )
            for d in await self._store.derivatives.of_parent(record.guid)
            if d.state is DerivativeState.CREATED_IN_ARS
        ]
        job_config = self._config.jobs.get(record.job)
        return JobTicket(
            key=key,
            guid=record.guid,
            job=record.job,
            module=record.module,
            attempt=record.attempt,
            institution=asset.institution,
            collection=asset.collection,
            files=files,
            metadata=msgspec.json.decode(raw, type=dict[str, Any]),  # validated at intake
            ars=ArsAccess(token_url=self._config.ars.token_url, client_id=self._config.ars.client_id),
            derivatives=derivatives,
            time_limit_s=job_config.time_limit_s if job_config else 1800.0,
        )

    @property
    def subjects(self) -> list[str]:
        """The barcode subjects the daemon knows (processing.subjects)."""
        return sorted(self._config.processing.subjects)

    async def parent_of(self, derivative: str) -> str:
        record = await self._store.derivatives.get(derivative)
        if record is None:
            raise CallbackError(404, f"no derivative {derivative} is known")
        return record.parent

    async def awaiting_upload(self, parent: str) -> list[str]:
        """The parent's derivatives created in ARS whose file is still to be uploaded."""
        children = await self._store.derivatives.of_parent(parent)
        return [c.guid for c in children if c.state is DerivativeState.CREATED_IN_ARS]

    async def image_link(self, guid: str) -> str:
        asset = await self._store.assets.get(guid)
        files = [f for f in await self._store.assets.files(guid) if f.record.kind is FileKind.IMAGE]
        if asset is None or not files:
            raise CallbackError(404, f"asset {guid} has no image file")
        name = files[-1].record.name
        return self._ars.file_url(institution=asset.institution, collection=asset.collection, guid=guid, name=name)

    async def metadata(self, guid: str) -> dict[str, Any]:
        raw = await self._store.assets.metadata_json(guid)
        if raw is None:
            raise CallbackError(404, f"no metadata for asset {guid}")
        document: dict[str, Any] = msgspec.json.decode(raw, type=dict[str, Any])
        return document

    async def current(self, guid: str, *, job: str | None = None, module: str | None = None) -> JobRecord:
        """The current attempt of the asset's job named ``job`` (or running ``module``): the original API's calls
        carry no attempt number. CallbackError 404 when the asset has no such job."""
        for record in await self._store.jobs.of_asset(guid):
            if record.job == job or (job is None and record.module == module):
                return record
        raise CallbackError(404, f"asset {guid} has no job {job or module!r}")

    async def queued(self, key: str, *, executor_id: str, caller: str) -> CallbackAnswer:
        return await self._apply(key, JobTrigger.QUEUE, caller=caller, reason=f"queued as {executor_id}",
                                 executor_id=executor_id)  # fmt: skip

    async def started(self, key: str, body: StartedBody, *, caller: str) -> CallbackAnswer:
        where = f"{body.host or 'a node'} (pid {body.pid})" if body.pid else body.host or "a node"
        if body.job_id:
            where += f" as {body.job_id}"
        extra = {"executor_id": body.job_id} if body.job_id else {}
        return await self._apply(key, JobTrigger.START, caller=caller, reason=f"started on {where}", **extra)

    async def finished(self, key: str, body: FinishedBody, *, caller: str) -> CallbackAnswer:
        record = await self.job(key)
        module = record.module
        view = RESULT_VIEWS.get(module)
        if view is not None:
            try:
                _check_result(msgspec.convert(body.result, view), record.guid)
            except (msgspec.ValidationError, ValueError) as exc:
                reason = f"its result does not validate: {exc}"
                await self._apply(key, JobTrigger.FAIL, caller=caller, reason=reason)
                raise CallbackError(422, f"result: {exc}") from exc
        return await self._apply(
            key,
            JobTrigger.FINISH,
            caller=caller,
            reason=f"finished ({module} {body.module_version})",
            result=msgspec.json.encode(body.result),
            module_version=body.module_version,
        )

    async def failed(self, key: str, body: FailedBody, *, caller: str) -> CallbackAnswer:
        reason = f"[{body.kind}] {body.reason}"
        if body.stderr_tail:
            reason += f"\n{body.stderr_tail[-2000:]}"
        return await self._apply(key, JobTrigger.FAIL, caller=caller, reason=reason)

    async def _apply(self, key: str, trigger: JobTrigger, *, caller: str, reason: str, **extra: Any) -> CallbackAnswer:
        try:
            guid, job, attempt = split_job_key(key)
        except ValueError as exc:
            raise CallbackError(404, str(exc)) from exc
        try:
            moved = await self._store.jobs.transition(
                guid, job, trigger, attempt=attempt, actor=f"callback:{caller}", reason=reason, **extra
            )
        except UnknownJob as exc:
            raise CallbackError(404, str(exc)) from exc
        except StaleAttempt as exc:
            self.stale += 1
            current = await self.job(key)
            return CallbackAnswer(key=key, state=current.state.value, applied=False,
                                  note=f"an earlier attempt: the job is at attempt {exc.current}")  # fmt: skip
        except IllegalTransition:
            self.stale += 1
            current = await self.job(key)
            return CallbackAnswer(key=key, state=current.state.value, applied=False,
                                  note=f"already {current.state.value}: nothing changed")  # fmt: skip
        self.applied += 1
        log.debug("job_callback", job_key=key, trigger=trigger.value, state=moved.state.value, caller=caller)
        await self._wake(guid, f"job {job} {moved.state.value}")
        return CallbackAnswer(key=key, state=moved.state.value, applied=True)


def _check_result(view: msgspec.Struct, guid: str) -> None:
    """What the types cannot say: a derivatives result is about this asset, and each derivative is a new GUID."""
    if isinstance(view, DerivativesView):
        if view.parent_guid != guid:
            raise ValueError(f"parent_guid {view.parent_guid!r} is not this job's asset {guid!r}")
        made = [item.guid for item in view.derivatives]
        if guid in made or len(set(made)) != len(made) or not all(made):
            raise ValueError(f"derivatives: each needs a GUID of its own, other than the parent's (got {made})")
