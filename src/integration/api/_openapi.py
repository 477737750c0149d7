"""The OpenAPI 3.1 document of the API, built from the msgspec schemas of its bodies."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from integration.domain import CallbackAnswer, FailedBody, FinishedBody, JobTicket, StartedBody

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{name}"


def _json(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json("Error")}


_AUTH_ERRORS = {"401": _error("no valid bearer token: nothing changed"), "404": _error("no such job")}
_BODY_ERRORS = {
    "413": _error("the body is over api.max_body_bytes"),
    "422": _error("the body does not decode (names the field)"),
}


def _callback(summary: str, body: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "parameters": [{"$ref": "#/components/parameters/key"}],
            "requestBody": {"required": True, **_json(body)},
            "responses": {
                "200": {
                    "description": "applied, or stale (applied: false) and nothing changed",
                    **_json("CallbackAnswer"),
                },
                **_AUTH_ERRORS,
                **_BODY_ERRORS,
            },
        }
    }


@functools.cache
def openapi_document() -> bytes:
    (_, components) = msgspec.json.schema_components(
        [JobTicket, StartedBody, FinishedBody, FailedBody, CallbackAnswer], ref_template=_REF
    )
    components["Error"] = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    paths: dict[str, Any] = {
        "/api/v1/jobs/{key}": {
            "get": {
                "summary": "The job's ticket: files, share links, metadata, derivatives to upload",
                "security": [{"bearer": []}],
                "parameters": [{"$ref": "#/components/parameters/key"}],
                "responses": {
                    "200": {"description": "the ticket", **_json("JobTicket")},
                    "409": _error("an earlier attempt, or a job that is not running"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/v1/jobs/{key}/started": _callback("The runner started the job", "StartedBody"),
        "/api/v1/jobs/{key}/finished": _callback("The module's result (validated per module)", "FinishedBody"),
        "/api/v1/jobs/{key}/failed": _callback("The job failed, with what it is blamed on", "FailedBody"),
        "/health": {
            "get": {
                "summary": "Liveness, lanes, actors' heartbeats",
                "responses": {"200": {"description": "healthy"}, "503": {"description": "unhealthy"}},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {"200": {"description": "metrics"}}}},
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "DaSSCo integration daemon API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "key": {
                    "name": "key",
                    "in": "path",
                    "required": True,
                    "description": "<asset GUID>-<job>-<attempt>",
                    "schema": {"type": "string"},
                }
            },
        },
    }
    return msgspec.json.encode(document)
