"""The daemon's HTTP API: job callbacks (``/api/v1``), the original HPC API (``/dev/api/v1``), ``/health``,
``/metrics`` and the OpenAPI document (docs/api.md)."""

from integration.api._app import ApiDeps, build_api
from integration.api._jobs import RESULT_VIEWS, CallbackError, JobCallbacks
from integration.api._openapi import openapi_document
from integration.api._server import listen, serve_api
from integration.api._tokens import MIN_TOKEN_LENGTH, Tokens

__all__ = [
    "MIN_TOKEN_LENGTH",
    "RESULT_VIEWS",
    "ApiDeps",
    "CallbackError",
    "JobCallbacks",
    "Tokens",
    "build_api",
    "listen",
    "openapi_document",
    "serve_api",
]
