"""ARS routes (``/ars/api/v1/…``): asset metadata, statuses, reference data, specimens (spec §3).

Each route carries the ``@RolesAllowed`` set of the spec's roles column; the events route only needs a token
and the specimen GET none.
"""

from __future__ import annotations

from functools import partial

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from integration.emulators.ars._asset_deletes import delete_asset, delete_asset_metadata
from integration.emulators.ars._assets import create_asset, get_asset, in_progress, status_of, update_asset
from integration.emulators.ars._errors import ApiError, bad_request, json_response
from integration.emulators.ars._http import guarded, host_of
from integration.emulators.ars._model import Core
from integration.emulators.ars._reference import SpecimenIn
from integration.emulators.ars._roles import ADMIN_DEV_SERVICE, ADMIN_DEV_SERVICE_USER, ADMIN_ONLY

__all__ = ["ars_routes"]

_V1 = "/ars/api/v1"
_NO_CONTENT = 204


class _Ars:
    """The ARS handlers over one :class:`Core`."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def create(self, request: Request, user: str) -> Response:
        allocation = request.query_params.get("allocation_mb")
        status, body = await create_asset(self.core, await request.body(), allocation, user, host_of(request))
        if status == 200 and self.core.take_fault("drop_reply_after_create"):
            return PlainTextResponse("Gateway Timeout", 504)
        return json_response(body, status)

    async def get(self, request: Request, user: str) -> Response:
        asset = get_asset(self.core, request.path_params["guid"])
        return Response(status_code=_NO_CONTENT) if asset is None else json_response(asset)

    async def update(self, request: Request, user: str) -> Response:
        return json_response(update_asset(self.core, request.path_params["guid"], await request.body(), user))

    async def delete(self, request: Request, user: str) -> Response:
        delete_asset(self.core, request.path_params["guid"], user)
        return Response(status_code=_NO_CONTENT)

    async def delete_metadata(self, request: Request, user: str) -> Response:
        return json_response(delete_asset_metadata(self.core, request.path_params["guid"]))

    async def events(self, request: Request, user: str) -> Response:
        entry = self.core.assets.get(request.path_params["guid"])
        if entry is None:
            raise bad_request("Asset doesnt exist")
        return json_response(entry.events)

    async def status(self, request: Request, user: str) -> Response:
        return json_response(status_of(self.core, request.path_params["guid"]))

    async def in_progress(self, request: Request, user: str) -> Response:
        only_failed = request.query_params.get("onlyFailed", "false").lower() == "true"
        return json_response(in_progress(self.core, only_failed))

    async def institutions(self, request: Request, user: str) -> Response:
        return json_response(self.core.ref.institutions_json())

    async def institution(self, request: Request, user: str) -> Response:
        found = self.core.ref.institution_json(request.path_params["institution"])
        return Response(status_code=_NO_CONTENT) if found is None else json_response(found)

    async def collections(self, request: Request, user: str) -> Response:
        return json_response(self.core.ref.collections_json(request.path_params["institution"]))

    async def pipelines(self, request: Request, user: str) -> Response:
        return json_response(self.core.ref.pipelines_json(request.path_params["institution"]))

    async def workstations(self, request: Request, user: str) -> Response:
        return json_response(self.core.ref.workstations_json(request.path_params["institution"]))

    async def lists(self, request: Request, user: str) -> Response:
        values = self.core.ref.lists.get(request.path_params["name"])
        if values is None:
            raise ApiError(404, "NOT_FOUND", None)
        return json_response(list(values))

    async def put_specimen(self, request: Request, user: str) -> Response:
        p = request.path_params
        try:
            body = msgspec.json.decode(await request.body(), type=SpecimenIn)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise bad_request(str(exc)) from exc
        return json_response(self.core.ref.put_specimen(p["institution"], p["collection"], p["barcode"], body))

    async def get_specimen(self, request: Request, user: str) -> Response:
        p = request.path_params
        found = self.core.ref.specimens.get((p["institution"], p["collection"], p["barcode"]))
        if found is None:
            raise ApiError(404, "NOT_FOUND", None)
        return json_response(found)


def ars_routes(core: Core) -> list[BaseRoute]:
    """The ARS routes of the emulator."""
    ars = _Ars(core)
    auth = partial(guarded, core, "ars")
    ads, adsu = ADMIN_DEV_SERVICE, ADMIN_DEV_SERVICE_USER
    asset = f"{_V1}/assetmetadata/{{guid}}"
    institution = f"{_V1}/institutions/{{institution}}"
    specimen = f"{institution}/collections/{{collection}}/specimen/{{barcode}}"
    return [
        Route(f"{_V1}/assetmetadata", auth(ars.create, roles=ads), methods=["POST"]),
        Route(asset, auth(ars.get, roles=adsu), methods=["GET"]),
        Route(asset, auth(ars.update, roles=ads), methods=["PUT"]),
        Route(asset, auth(ars.delete, roles=ADMIN_ONLY), methods=["DELETE"]),
        Route(f"{asset}/deleteMetadata", auth(ars.delete_metadata, roles=ADMIN_ONLY), methods=["DELETE"]),
        Route(f"{asset}/events", auth(ars.events), methods=["GET"]),
        Route(f"{_V1}/assets/status/{{guid}}", auth(ars.status, roles=adsu), methods=["GET"]),
        Route(f"{_V1}/assets/inprogress", auth(ars.in_progress, roles=ads), methods=["GET"]),
        Route(f"{_V1}/institutions", auth(ars.institutions, roles=ads), methods=["GET"]),
        Route(institution, auth(ars.institution, roles=ads), methods=["GET"]),
        Route(f"{institution}/collections", auth(ars.collections, roles=adsu), methods=["GET"]),
        Route(f"{institution}/pipelines", auth(ars.pipelines, roles=ads), methods=["GET"]),
        Route(f"{institution}/workstations", auth(ars.workstations, roles=ads), methods=["GET"]),
        Route(f"{_V1}/lists/{{name}}", auth(ars.lists, roles=adsu), methods=["GET"]),
        Route(specimen, auth(ars.put_specimen, roles=ads), methods=["PUT"]),
        Route(specimen, guarded(core, "ars", ars.get_specimen, auth=False), methods=["GET"]),
    ]
