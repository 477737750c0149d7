"""The daemon's API in process (ASGI) over a real store: one asset "g" with jobs asset_loader (group 1),
barcode and ocr (group 2); asset_loader and barcode submitted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from daemon_support import make_config
from integration.api import ApiDeps, JobCallbacks, Tokens, build_api
from integration.state_machines import JobTrigger
from integration.store import Store, open_store
from store.test_store import new_asset

__all__ = ["AUTH", "BARCODE", "TOKEN", "Api", "api"]

TOKEN = "cluster-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GROUPS = [[("asset_loader", "asset_loader")], [("barcode", "barcode"), ("ocr", "ocr")]]
BARCODE = {"barcodes": ["NHMD-1234"], "asset_subject": "specimen", "MSO": False, "MOS": False, "label": False,
           "disposable": None}  # fmt: skip


class FakeArs:
    def file_url(self, *, institution: str, collection: str, guid: str, name: str) -> str:
        return f"http://ars/file_proxy/api/assetfiles/{institution}/{collection}/{guid}/{name}"


class Api:
    def __init__(self, store: Store, client: httpx.AsyncClient, callbacks: JobCallbacks, woken: list[str]) -> None:
        self.store, self.client, self.callbacks, self.woken = store, client, callbacks, woken

    async def post(self, key: str, what: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/jobs/{key}/{what}", json=body, headers=AUTH if headers is None else headers
        )

    async def job(self, name: str) -> Any:
        return next(j for j in await self.store.jobs.of_asset("g") if j.job == name)


@asynccontextmanager
async def api(
    tmp_path: Path, *, max_body_bytes: int = 1_000_000, groups: list[list[tuple[str, str]]] | None = None
) -> AsyncIterator[Api]:
    config = make_config(tmp_path, 1)
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("g"), actor="test")
        await store.jobs.plan("g", groups or GROUPS, actor="test")
        for job in ("asset_loader", "barcode") if groups is None else ():
            await store.jobs.transition("g", job, JobTrigger.SUBMIT, attempt=1, actor="test")
        woken: list[str] = []

        async def wake(guid: str, reason: str) -> None:
            woken.append(guid)

        callbacks = JobCallbacks(store=store, config=config, ars=FakeArs(), wake=wake)  # type: ignore[arg-type]

        async def health() -> tuple[bool, dict[str, Any]]:
            return True, {"alive": True}

        async def metrics() -> bytes:
            return b"integration_jobs 1\n"

        app = build_api(ApiDeps(callbacks=callbacks, tokens=Tokens({"cluster": TOKEN}), health=health, metrics=metrics,
                                max_body_bytes=max_body_bytes))  # fmt: skip
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://daemon") as client:
            yield Api(store, client, callbacks, woken)
