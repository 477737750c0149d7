"""File-proxy routes (``/file_proxy/api/…``): shares, uploads, listings, deletes (spec §4).

Each route carries the ``@RolesAllowed`` set of the spec's roles column; reading one file of a share and
listing the share only need a token.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from integration.emulators.ars._errors import json_response
from integration.emulators.ars._file_deletes import delete_in_share
from integration.emulators.ars._http import guarded, host_of
from integration.emulators.ars._model import Core
from integration.emulators.ars._roles import ADMIN_DEV_SERVICE, ADMIN_DEV_SERVICE_USER, ADMIN_ONLY, ADMIN_SERVICE
from integration.emulators.ars._shares import (
    ALLOCATION_HTTP,
    change_allocation,
    create_share,
    delete_share,
    http_info,
    synchronize,
)
from integration.emulators.ars._uploads import asset_files, share_file, share_listing, upload

__all__ = ["fileproxy_routes"]

_FP = "/file_proxy/api"
_FOLDER = f"{_FP}/assetfiles/{{institution}}/{{collection}}/{{guid}}"
_SHARE = f"{_FP}/shares/assets/{{guid}}"


def _where(request: Request) -> tuple[str, str, str]:
    p = request.path_params
    return p["institution"], p["collection"], p["guid"]


class _FileProxy:
    """The file-proxy handlers over one :class:`Core`."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def upload(self, request: Request, user: str) -> Response:
        query = (request.query_params.get("crc"), request.query_params.get("file_size_mb"))
        content_type = request.headers.get("content-type")
        where, path = _where(request), request.path_params["path"]
        try:
            status, body = await upload(self.core, where, path, query, content_type, request.stream())
        except ClientDisconnect:  # the client went away mid-upload; nothing was stored, nobody to answer
            return Response(status_code=400)
        return json_response(body, status)

    async def listing(self, request: Request, user: str) -> Response:
        return json_response(share_listing(self.core, _where(request), host_of(request)))

    async def download(self, request: Request, user: str) -> Response:
        path = share_file(self.core, _where(request), request.path_params["path"])
        return FileResponse(path, filename=path.name)

    async def delete_file(self, request: Request, user: str) -> Response:
        delete_in_share(self.core, _where(request), request.path_params["path"])
        return Response(status_code=204)

    async def files(self, request: Request, user: str) -> Response:
        return json_response(asset_files(self.core, request.path_params["guid"]))

    async def create_share(self, request: Request, user: str) -> Response:
        guid = request.path_params["guid"]
        outcome = create_share(self.core, guid, await request.body())
        return json_response(http_info(self.core, guid, host_of(request), outcome, fp=True))

    async def delete_share(self, request: Request, user: str) -> Response:
        guid = request.path_params["guid"]
        outcome = delete_share(self.core, guid)
        info = http_info(self.core, guid, host_of(request), outcome, fp=True)
        return json_response(info, ALLOCATION_HTTP[outcome.status])

    async def change_allocation(self, request: Request, user: str) -> Response:
        guid = request.path_params["guid"]
        outcome = change_allocation(self.core, guid, await request.body())
        return json_response(http_info(self.core, guid, host_of(request), outcome, fp=True))

    async def synchronize(self, request: Request, user: str) -> Response:
        synchronize(self.core, request.path_params["guid"])
        return Response(status_code=204)

    async def shares(self, request: Request, user: str) -> Response:
        core = self.core
        return json_response(
            [
                {
                    "path": f"/assetfiles/{s.institution}/{s.collection}/{s.guid}/",
                    "id": number,
                    "assets": [core.status_info(s.guid)],
                }
                for number, s in enumerate(core.shares.values(), start=1)
            ]
        )


def fileproxy_routes(core: Core) -> list[BaseRoute]:
    """The file-proxy routes of the emulator."""
    fp = _FileProxy(core)
    auth = partial(guarded, core, "fp")
    ads = ADMIN_DEV_SERVICE
    return [
        Route(f"{_FOLDER}/", auth(fp.listing), methods=["GET"]),
        Route(f"{_FOLDER}/{{path:path}}", auth(fp.upload, roles=ads), methods=["PUT"]),
        Route(f"{_FOLDER}/{{path:path}}", auth(fp.download), methods=["GET"]),
        Route(f"{_FOLDER}/{{path:path}}", auth(fp.delete_file, roles=ADMIN_ONLY), methods=["DELETE"]),
        Route(f"{_FP}/assets/{{guid}}/files", auth(fp.files, roles=ADMIN_DEV_SERVICE_USER), methods=["GET"]),
        Route(f"{_SHARE}/createShare", auth(fp.create_share, roles=ads), methods=["POST"]),
        Route(f"{_SHARE}/deleteShare", auth(fp.delete_share, roles=ads), methods=["DELETE"]),
        Route(f"{_SHARE}/changeAllocation", auth(fp.change_allocation, roles=ADMIN_SERVICE), methods=["POST"]),
        Route(f"{_SHARE}/synchronize", auth(fp.synchronize, roles=ads), methods=["POST"]),
        Route(f"{_FP}/shares", auth(fp.shares, roles=ADMIN_SERVICE), methods=["GET"]),
    ]
