"""The asset actor's decisions around ARS create: reconcile, wait out ARS's block, or quarantine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from daemon_support import make_config
from integration.actors import AssetDeps, Lane, drive_asset
from integration.adapters.ars import AssetStatus, CreatedAsset
from integration.domain import FileKind, FileRecord
from integration.errors import ArsConflict
from integration.state_machines import AssetState
from integration.store import AssetRecord, EventRecord, NewAsset, Store, open_store

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
METADATA = {
    "asset_guid": GUID,
    "institution": "test-institution",
    "collection": "test-collection",
    "pipeline_name": "test-pipeline",
    "workstation_name": "test-workstation",
    "file_format": "tif",
    "date_asset_taken": "2024-08-08T12:27:21+02:00",
    "digitiser": "jdoe",
}


class FakeArs:
    """Just enough of ArsClient for the create step: scripted answers, counted calls."""

    def __init__(self, *, status: AssetStatus | None, create_error: Exception | None) -> None:
        self.status = status
        self.create_error = create_error
        self.creates = 0

    async def get_status(self, guid: str) -> AssetStatus | None:
        return self.status

    async def create_asset(self, body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
        self.creates += 1
        if self.create_error is not None:
            raise self.create_error
        return CreatedAsset(guid=GUID, share_path=None, allocated_mb=allocation_mb)

    async def upload_file(self, **kwargs: Any) -> None:
        raise AssertionError("the local copy does not exist, so the actor never gets here")


async def record(store: Store, *, intent: str | None) -> None:
    image = FileRecord(name=f"{GUID}.tif", kind=FileKind.IMAGE, size=10, crc32=1, local_path=f"/nowhere/{GUID}.tif")
    await store.record_ingested(
        NewAsset(
            guid=GUID,
            pipeline="test-pipeline",
            institution="test-institution",
            collection="test-collection",
            workstation="test-workstation",
            session="/n/s",
            local_dir="/nowhere",
            allocation_mb=2,
            metadata_json=json.dumps(METADATA).encode(),
            files=((image, "/n/s/x.tif"),),
        ),
        actor="test",
    )
    if intent:
        await store.update(GUID, expected=AssetState.INGESTED, intent=intent)


async def drive(tmp_path: Path, ars: FakeArs, *, intent: str | None) -> tuple[AssetRecord, list[EventRecord]]:
    """Record the asset (with ``intent``), drive it once; return its row and events afterwards."""
    config = make_config(tmp_path, 1)
    async with open_store(tmp_path / "t.db") as store:
        await record(store, intent=intent)
        deps = AssetDeps(store=store, ars=ars, lane=Lane("ars"), config=config, kick_scheduler=lambda: None)  # type: ignore[arg-type]
        await drive_asset(GUID, deps)
        result = await store.asset(GUID)
        assert result is not None
        return result, await store.events(GUID)


async def test_ars_block_after_a_failed_create_is_waited_out(tmp_path: Path) -> None:
    """403 'already being processed' with no asset in ARS: keep the intent, retry in >= 60 s, no quarantine."""
    blocked = ArsConflict("Asset is already being processed", status_code=403, error_message="already being processed")
    ars = FakeArs(status=None, create_error=blocked)
    before = time.time()
    result, _ = await drive(tmp_path, ars, intent=None)
    assert result.state is AssetState.INGESTED
    assert result.intent == "create"
    assert result.attempts == 1
    assert result.next_wake >= before + 60


async def test_someone_elses_asset_is_quarantined(tmp_path: Path) -> None:
    """400 'already exists' on a first create (no earlier intent): the GUID belongs to another asset."""
    exists = ArsConflict("exists", status_code=400, error_message=f"Asset {GUID} already exists")
    ars = FakeArs(status=AssetStatus(asset_guid=GUID, status="ERDA_SYNCHRONISED"), create_error=exists)
    result, _ = await drive(tmp_path, ars, intent=None)
    assert result.state is AssetState.QUARANTINED
    assert "already exists" in result.reason


async def test_unconfirmed_create_is_reconciled_not_repeated(tmp_path: Path) -> None:
    """With a create intent left by a crash and the asset in ARS, the actor records it without a new POST."""
    ars = FakeArs(
        status=AssetStatus(asset_guid=GUID, status="METADATA_RECEIVED", share_allocation_mb=2), create_error=None
    )
    _, events = await drive(tmp_path, ars, intent="create")
    assert ars.creates == 0
    create = next(e for e in events if e.trigger == "create")
    assert "reconciled, not re-created" in create.reason
    quarantine = events[-1]
    assert quarantine.trigger == "quarantine"
    assert "local copy /nowhere" in quarantine.reason  # a vanished local copy is explained, not retried
