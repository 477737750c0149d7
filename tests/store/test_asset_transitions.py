"""Asset transitions that carry more than a state: the end of a wait, the files ARS holds, a follow-up intent."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.domain import FileKind, FileRecord
from integration.errors import StateConflict
from integration.state_machines import AssetState, AssetTrigger
from integration.store import NewAsset, Wake, open_store


def asset(guid: str) -> NewAsset:
    files = tuple(
        (
            FileRecord(name=f"{guid}.{ext}", kind=kind, size=10, crc32=1, local_path=f"/local/{guid}.{ext}"),
            f"/ndrive/ws/s1/{guid}.{ext}",
        )
        for ext, kind in (("tif", FileKind.IMAGE), ("dng", FileKind.RAW))
    )
    return NewAsset(
        guid=guid,
        pipeline="p",
        institution="i",
        collection="c",
        workstation="w",
        session="/ndrive/ws/s1",
        local_dir="/local",
        allocation_mb=2,
        metadata_json=b"{}",
        files=files,
    )


async def test_a_new_state_ends_a_wait_of_the_old_one(tmp_path: Path) -> None:
    """waiting_since belongs to one state: a wait in the next state starts its own clock (no early give-up)."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(asset("a"), actor="t")
        await store.assets.update("a", expected=AssetState.INGESTED, waiting_since=100.0)
        moved = await store.assets.transition(
            "a", AssetTrigger.CREATE, expected=AssetState.INGESTED, reason="created", actor="t"
        )
        assert moved.waiting_since is None
        await store.assets.update("a", expected=AssetState.CREATED_IN_ARS, waiting_since=200.0)
        waiting = await store.assets.get("a")
        assert waiting is not None
        assert waiting.waiting_since == 200.0  # bookkeeping within a state keeps it
        uploaded = await store.assets.transition(
            "a", AssetTrigger.UPLOAD, expected=AssetState.CREATED_IN_ARS, reason="up", actor="t"
        )
        assert uploaded.waiting_since is None


async def test_retry_bookkeeping_is_one_transaction_with_the_move(tmp_path: Path) -> None:
    """The files ARS holds and the follow-up intent are written with the transition, or not at all."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(asset("a"), actor="t")
        await store.assets.transition(
            "a", AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="bad", actor="t"
        )
        with pytest.raises(StateConflict):
            await store.assets.transition(
                "a",
                AssetTrigger.RETRY,
                expected=AssetState.FAILED,  # stale: nothing may be written
                reason="retry",
                actor="op",
                uploaded=["a.tif"],
                then_open="reconcile_files",
            )
        assert not any(f.uploaded for f in await store.assets.files("a"))
        record = await store.assets.get("a")
        assert record is not None
        assert record.intents == frozenset()
        moved = await store.assets.transition(
            "a",
            AssetTrigger.RETRY_UPLOAD,
            expected=AssetState.QUARANTINED,
            reason="retry",
            actor="op",
            wake=Wake(kind="dispatch", due=1.0, reason="retry"),
            uploaded=["a.tif"],
            then_open="reconcile_files",
        )
        assert moved.state is AssetState.CREATED_IN_ARS
        assert moved.has_intent("reconcile_files")
        assert {f.record.name: f.uploaded for f in await store.assets.files("a")} == {"a.tif": True, "a.dng": False}
        events = [(e.kind, e.trigger) for e in await store.assets.events("a")]
        assert events[-2:] == [("transition", "retry_upload"), ("intent", "reconcile_files")]
