"""The error answers of the emulated services and how each service renders them (spec §1, §15).

:class:`ApiError` is control flow inside the emulator: a handler raises it and the route wrapper turns it into
the response the real service would give. It never leaves this package.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from starlette.responses import Response

__all__ = [
    "ApiError",
    "Service",
    "bad_request",
    "file_not_found",
    "fp_forbidden",
    "json_response",
    "not_found",
    "render_error",
    "server_error",
]

Service = Literal["ars", "fp"]
"""Which envelope to use: ARS (with ``body``) or the file proxy (without)."""

_ENCODER = msgspec.json.Encoder()


class ApiError(Exception):
    """An answer other than success: HTTP status, ``errorCode`` and ``errorMessage``.

    ``bare`` answers have an empty body (Spring's bearer filter, JAX-RS 404 on ARS); ``headers`` are added.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None,
        *,
        bare: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message
        self.bare = bare
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    """400 BAD_REQUEST (IllegalArgumentException on both services)."""
    return ApiError(400, "BAD_REQUEST", message)


def forbidden(message: str) -> ApiError:
    """ARS 403 FORBIDDEN (DasscoIllegalActionException on ARS)."""
    return ApiError(403, "FORBIDDEN", message)


def fp_forbidden(message: str) -> ApiError:
    """File-proxy illegal action: HTTP 400 with errorCode FORBIDDEN."""
    return ApiError(400, "FORBIDDEN", message)


def not_found(message: str = "HTTP 404 Not Found") -> ApiError:
    """404: plain on ARS, NOT_FOUND envelope on the file proxy."""
    return ApiError(404, "NOT_FOUND", message)


def file_not_found(where: tuple[str, str, str], path: str) -> ApiError:
    """The file proxy's 404 for ``path`` not in the open share of ``where`` = (institution, collection, guid)."""
    institution, collection, guid = where
    return not_found(
        f"Asset file not found for institution: {institution}, collection: {collection}, assetGuid: {guid}, "
        f"path: {path}"
    )


def server_error(message: str) -> ApiError:
    """500: Spring's default error body on ARS, INTERNAL_ERROR envelope on the file proxy."""
    return ApiError(500, "INTERNAL_ERROR", message)


def json_response(content: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with msgspec (nulls included, like Jackson)."""
    return Response(_ENCODER.encode(content), status, headers, media_type="application/json")


def render_error(error: ApiError, service: Service, path: str) -> Response:
    """The response ``service`` gives for ``error``."""
    if error.bare or (service == "ars" and error.status == 404):
        return Response(b"", error.status, error.headers)
    if service == "ars" and error.status == 500:
        body: dict[str, object] = {
            "timestamp": None,
            "status": 500,
            "error": "Internal Server Error",
            "message": error.message,
            "path": path,
        }
        return json_response(body, 500, error.headers)
    envelope: dict[str, object] = {
        "type": "Error",
        "protocolVersion": "1.0",
        "errorCode": error.code,
        "errorMessage": error.message,
    }
    if service == "ars":
        envelope["body"] = None
    return json_response(envelope, error.status, error.headers)
