"""The daemon's HTTP API as a Starlette app: routes, authentication, body limits, JSON in and out.

=====================================  ======  =============================================================
``GET  /api/v1/jobs/{key}``            token   the job's ticket (files, share links, metadata) for its runner
``POST /api/v1/jobs/{key}/started``    token   the runner started (body: StartedBody)
``POST /api/v1/jobs/{key}/finished``   token   the module's result (body: FinishedBody; validated per module)
``POST /api/v1/jobs/{key}/failed``     token   the job failed (body: FailedBody)
``/dev/api/v1/...``                    token   the original HPC API's endpoints, bodies unchanged (_original)
``GET  /api/v1/openapi.json``          none    the OpenAPI document of all of the above
``GET  /health``                       none    liveness, each lane, each actor's heartbeat
``GET  /metrics``                      none    Prometheus text
=====================================  ======  =============================================================

401 without a valid token (nothing changes), 413 for a body over ``api.max_body_bytes``, 422 naming the
field for a body that does not decode, 404 for an unknown job, 409 for a ticket of a settled or earlier attempt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from integration.api._jobs import CallbackError, JobCallbacks
from integration.api._openapi import openapi_document
from integration.api._original import original_routes
from integration.api._tokens import Tokens
from integration.domain import FailedBody, FinishedBody, StartedBody

__all__ = ["ApiDeps", "build_api"]

log = structlog.get_logger()

T = TypeVar("T", bound=msgspec.Struct)
Handler = Callable[[Request, str], Awaitable[Response]]


class ApiDeps(msgspec.Struct, frozen=True, kw_only=True):
    callbacks: JobCallbacks
    tokens: Tokens
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]  # (healthy, document)
    metrics: Callable[[], Awaitable[bytes]]
    max_body_bytes: int


def json_response(body: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise CallbackError(413, f"the body is {declared} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise CallbackError(413, f"the body is over {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def decode_body(raw: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise CallbackError(422, str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise CallbackError(422, f"the body is not JSON: {exc}") from exc
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # bytes that are not UTF-8, nesting too deep
        raise CallbackError(422, f"the body cannot be read: {type(exc).__name__}") from exc


def authenticated(deps: ApiDeps, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Run ``handler`` for a caller with a valid token; 401 otherwise (the token itself is never logged)."""

    async def endpoint(request: Request) -> Response:
        caller = deps.tokens.caller(request.headers.get("authorization"))
        if caller is None:
            log.warning("api_unauthorised", path=request.url.path, client=request.client.host if request.client else "")
            return Response(
                msgspec.json.encode({"error": "a valid bearer token is required"}),
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return await handler(request, caller)
        except CallbackError as exc:
            return error_response(exc.status, exc.message)

    return endpoint


def build_api(deps: ApiDeps) -> Starlette:
    callbacks = deps.callbacks
    limit = deps.max_body_bytes

    async def ticket(request: Request, caller: str) -> Response:
        return json_response(await callbacks.ticket(request.path_params["key"]))

    async def started(request: Request, caller: str) -> Response:
        body = decode_body(await read_body(request, limit), StartedBody)
        return json_response(await callbacks.started(request.path_params["key"], body, caller=caller))

    async def finished(request: Request, caller: str) -> Response:
        body = decode_body(await read_body(request, limit), FinishedBody)
        return json_response(await callbacks.finished(request.path_params["key"], body, caller=caller))

    async def failed(request: Request, caller: str) -> Response:
        body = decode_body(await read_body(request, limit), FailedBody)
        return json_response(await callbacks.failed(request.path_params["key"], body, caller=caller))

    async def health(request: Request) -> Response:
        healthy, document = await deps.health()
        return json_response(document, 200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        return Response(await deps.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return Response(openapi_document(), media_type="application/json")

    jobs = "/api/v1/jobs/{key}"
    routes: list[BaseRoute] = [
        Route(jobs, authenticated(deps, ticket), methods=["GET"]),
        Route(f"{jobs}/started", authenticated(deps, started), methods=["POST"]),
        Route(f"{jobs}/finished", authenticated(deps, finished), methods=["POST"]),
        Route(f"{jobs}/failed", authenticated(deps, failed), methods=["POST"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *original_routes(deps, authenticated, limit),
    ]
    return Starlette(routes=routes)
