"""The store: transitions and their events are atomic, the log is append-only, due-work queries use indexes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from integration.domain import FileKind, FileRecord
from integration.errors import IllegalTransition, StateConflict
from integration.state_machines import AssetState, AssetTrigger
from integration.store import MIGRATIONS, NewAsset, Store, open_store, schema_version


def new_asset(guid: str, session: str = "/ndrive/ws/s1") -> NewAsset:
    record = FileRecord(name=f"{guid}.tif", kind=FileKind.IMAGE, size=10, crc32=123, local_path=f"/local/{guid}.tif")
    return NewAsset(
        guid=guid,
        pipeline="p",
        institution="i",
        collection="c",
        workstation="w",
        session=session,
        local_dir="/local",
        allocation_mb=2,
        metadata_json=b'{"asset_guid": "%s", "unknown_field": 1}' % guid.encode(),
        files=((record, f"{session}/{guid}.tif"),),
    )


async def test_record_ingested_writes_asset_metadata_files_and_events(tmp_path: Path) -> None:
    """Ingesting records the asset in `ingested`, its metadata bytes, its files and detect+ingest events."""
    async with open_store(tmp_path / "t.db") as store:
        record = await store.record_ingested(new_asset("a"), actor="test")
        assert record.state is AssetState.INGESTED
        assert await store.metadata_json("a") == b'{"asset_guid": "a", "unknown_field": 1}'
        files = await store.files("a")
        assert [f.record.crc32 for f in files] == [123]
        events = await store.events("a")
        assert [(e.from_state, e.to_state) for e in events] == [(None, "detected"), ("detected", "ingested")]
        with pytest.raises(StateConflict):
            await store.record_ingested(new_asset("a"), actor="test")


async def test_transition_writes_state_and_event_together(tmp_path: Path) -> None:
    """A transition updates the state and appends one event with trigger, reason and actor."""
    async with open_store(tmp_path / "t.db") as store:
        await store.record_ingested(new_asset("a"), actor="test")
        record = await store.transition(
            "a",
            AssetTrigger.CREATE,
            expected=AssetState.INGESTED,
            reason="created",
            actor="actor-1",
            updates={"intent": None},
        )
        assert record.state is AssetState.CREATED_IN_ARS
        last = (await store.events("a"))[-1]
        assert (last.from_state, last.to_state, last.trigger, last.reason, last.actor) == (
            "ingested",
            "created_in_ars",
            "create",
            "created",
            "actor-1",
        )


async def test_illegal_or_stale_transition_changes_nothing(tmp_path: Path) -> None:
    """An illegal trigger or a stale expected state raises and writes neither state nor event."""
    async with open_store(tmp_path / "t.db") as store:
        await store.record_ingested(new_asset("a"), actor="test")
        with pytest.raises(IllegalTransition):
            await store.transition("a", AssetTrigger.CONFIRM_SYNC, expected=AssetState.INGESTED, reason="x", actor="t")
        with pytest.raises(StateConflict):
            await store.transition("a", AssetTrigger.UPLOAD, expected=AssetState.CREATED_IN_ARS, reason="x", actor="t")
        record = await store.asset("a")
        assert record is not None
        assert record.state is AssetState.INGESTED
        assert len(await store.events("a")) == 2


async def test_a_failing_call_does_not_undo_others_in_its_batch(tmp_path: Path) -> None:
    """Calls grouped into one transaction succeed or fail on their own (savepoints)."""
    async with open_store(tmp_path / "t.db") as store:
        for i in range(50):
            await store.record_ingested(new_asset(f"g{i}"), actor="test")
        results: dict[str, str] = {}

        async def move(guid: str, expected: AssetState) -> None:
            try:
                await store.transition(guid, AssetTrigger.CREATE, expected=expected, reason="r", actor="t")
                results[guid] = "ok"
            except StateConflict:
                results[guid] = "conflict"

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(move, f"g{i}", AssetState.INGESTED if i % 2 else AssetState.UPLOADED)
        assert sum(1 for v in results.values() if v == "ok") == 25
        counts = await store.counts_by_state()
        assert counts == {"created_in_ars": 25, "ingested": 25}
        assert store.statistics()["transactions"] < store.statistics()["calls"]


async def test_events_are_append_only(tmp_path: Path) -> None:
    """The database itself refuses to update or delete an event row."""
    async with open_store(tmp_path / "t.db") as store:
        await store.record_ingested(new_asset("a"), actor="test")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.run(lambda c: c.execute("UPDATE events SET reason = 'rewritten'"))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.run(lambda c: c.execute("DELETE FROM events"))


async def test_due_work_queries_use_indexes(tmp_path: Path) -> None:
    """Finding due wake-ups and assets by state uses an index, never a full table scan."""
    async with open_store(tmp_path / "t.db") as store:

        def plan(sql: str) -> str:
            async_plan = store.run(lambda c: " ".join(str(r[-1]) for r in c.execute("EXPLAIN QUERY PLAN " + sql)))
            return async_plan  # type: ignore[return-value]

        due = await plan("SELECT guid FROM assets WHERE next_wake IS NOT NULL AND next_wake <= 5 ORDER BY next_wake")
        assert "assets_by_wake" in due
        assert "SCAN assets" not in due
        earliest = await plan("SELECT MIN(next_wake) FROM assets WHERE next_wake IS NOT NULL")
        assert "assets_by_wake" in earliest
        by_state = await plan("SELECT guid FROM assets WHERE state IN ('ingested', 'paused')")
        assert "assets_by_state" in by_state


async def test_due_returns_only_due_assets(tmp_path: Path) -> None:
    """`due` returns assets whose wake-up time has passed, earliest first, and `next_wake` the minimum."""
    async with open_store(tmp_path / "t.db") as store:
        for i, wake in enumerate([30.0, 10.0, None, 20.0]):
            await store.record_ingested(new_asset(f"g{i}"), actor="t")
            if wake is not None:
                await store.update(f"g{i}", expected=AssetState.INGESTED, next_wake=wake)
        assert await store.next_wake() == 10.0
        assert [r.guid for r in await store.due(25.0)] == ["g1", "g3"]


async def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    """Opening twice applies the migrations once and records the version."""
    path = tmp_path / "t.db"
    async with open_store(path) as store:
        await store.record_ingested(new_asset("a"), actor="t")
    async with open_store(path) as store:
        assert await store.asset("a") is not None
    with sqlite3.connect(path) as connection:
        assert schema_version(connection) == len(MIGRATIONS)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_store_survives_reopen_with_state(tmp_path: Path) -> None:
    """State written before closing is there after reopening (persist first)."""
    path = tmp_path / "t.db"
    async with open_store(path) as store:
        await store.record_ingested(new_asset("a"), actor="t")
        await store.update("a", expected=AssetState.INGESTED, intent="create")
    async with open_store(path) as store:
        record = await store.asset("a")
        assert record is not None
        assert record.intent == "create"
        assert isinstance(store, Store)
