"""The store: transitions and their events are atomic, the log is append-only, due-work queries use indexes."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trio

from integration.domain import FileKind, FileRecord
from integration.errors import DaemonRunning, IllegalTransition, StateConflict
from integration.state_machines import AssetState, AssetTrigger
from integration.store import (
    MIGRATIONS,
    CommandRunning,
    LockHolder,
    NewAsset,
    Rejection,
    Store,
    Wake,
    daemon_lock,
    holder_of,
    lock_holder,
    lock_path,
    open_reader,
    open_store,
    read_request,
    schema_version,
    submit_request,
    withdraw_request,
)


def new_asset(guid: str, session: str = "/ndrive/ws/s1", *, files: tuple[str, ...] = ("tif",)) -> NewAsset:
    """An asset of ``session`` with one file per extension in ``files``."""
    records = tuple(
        (
            FileRecord(
                name=f"{guid}.{ext}",
                kind=FileKind.IMAGE if ext == "tif" else FileKind.RAW,
                size=10,
                crc32=123,
                local_path=f"/local/{guid}.{ext}",
            ),
            f"{session}/{guid}.{ext}",
        )
        for ext in files
    )
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
        files=records,
    )


async def test_record_ingested_writes_asset_metadata_files_and_events(tmp_path: Path) -> None:
    """Ingesting records the asset in `ingested`, its metadata bytes, its files and detect+ingest events."""
    async with open_store(tmp_path / "t.db") as store:
        record = await store.assets.record_ingested(new_asset("a"), actor="test")
        assert record.state is AssetState.INGESTED
        assert record.intents == frozenset()
        assert record.wake is None
        assert await store.assets.metadata_json("a") == b'{"asset_guid": "a", "unknown_field": 1}'
        [stored] = await store.assets.files("a")
        assert (stored.record.crc32, stored.ndrive_path, stored.uploaded) == (123, "/ndrive/ws/s1/a.tif", False)
        events = await store.assets.events("a")
        assert [(e.from_state, e.to_state, e.trigger, e.kind) for e in events] == [
            (None, "detected", "detect", "transition"),
            ("detected", "ingested", "ingest", "transition"),
        ]
        with pytest.raises(StateConflict):
            await store.assets.record_ingested(new_asset("a"), actor="test")


async def test_transition_writes_state_event_wake_and_settles_the_intent_together(tmp_path: Path) -> None:
    """A transition writes its state, event, the new wake-up and the intent's outcome in one call."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a"), actor="test")
        record = await store.assets.open_intent("a", "create", expected=AssetState.INGESTED, actor="actor")
        assert record.has_intent("create")
        moved = await store.assets.transition(
            "a",
            AssetTrigger.CREATE,
            expected=AssetState.INGESTED,
            reason="created",
            actor="actor",
            wake=Wake(kind="dispatch", due=5.0, reason="go on"),
            settle=("create", "created with 2 MB"),
        )
        assert moved.state is AssetState.CREATED_IN_ARS
        assert moved.intents == frozenset()
        assert moved.wake == Wake(kind="dispatch", due=5.0, reason="go on")
        kinds = [(e.kind, e.trigger, e.reason) for e in await store.assets.events("a")][2:]
        assert kinds[0][0:2] == ("intent", "create")
        assert kinds[1] == ("outcome", "create", "created with 2 MB")
        assert kinds[2] == ("transition", "create", "created")
        after = await store.assets.transition(
            "a", AssetTrigger.UPLOAD, expected=AssetState.CREATED_IN_ARS, reason="up", actor="actor"
        )
        assert after.wake is None  # a new state ends the old wait


async def test_illegal_or_stale_transition_changes_nothing(tmp_path: Path) -> None:
    """A trigger the table forbids, or a stale expected state, writes neither state nor event."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a"), actor="test")
        with pytest.raises(IllegalTransition):
            await store.assets.transition("a", AssetTrigger.UPLOAD, expected=AssetState.INGESTED, reason="", actor="t")
        with pytest.raises(StateConflict):
            await store.assets.transition("a", AssetTrigger.CREATE, expected=AssetState.UPLOADED, reason="", actor="t")
        record = await store.assets.get("a")
        assert record is not None
        assert record.state is AssetState.INGESTED
        assert len(await store.assets.events("a")) == 2


async def test_a_failing_call_does_not_undo_others_in_its_batch(tmp_path: Path) -> None:
    """Calls grouped into one transaction succeed or fail on their own (savepoints)."""
    async with open_store(tmp_path / "t.db") as store:
        for i in range(50):
            await store.assets.record_ingested(new_asset(f"g{i}"), actor="test")
        results: dict[str, str] = {}

        async def move(guid: str, expected: AssetState) -> None:
            try:
                await store.assets.transition(guid, AssetTrigger.CREATE, expected=expected, reason="r", actor="t")
                results[guid] = "ok"
            except StateConflict:
                results[guid] = "conflict"

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(move, f"g{i}", AssetState.INGESTED if i % 2 else AssetState.UPLOADED)
        assert sum(1 for v in results.values() if v == "ok") == 25
        assert await store.assets.counts_by_state() == {"created_in_ars": 25, "ingested": 25}
        stats = store.statistics()
        assert stats.transactions < stats.calls


async def test_events_are_append_only(tmp_path: Path) -> None:
    """The database itself refuses to update or delete an event row."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a"), actor="test")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.run(lambda c: c.execute("UPDATE events SET reason = 'rewritten'"))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.run(lambda c: c.execute("DELETE FROM events"))


async def test_due_work_queries_use_indexes(tmp_path: Path) -> None:
    """The store's own due-work queries, as it runs them (traced), use an index, never a table scan."""
    async with open_store(tmp_path / "t.db") as store:
        for i in range(20):
            await store.assets.record_ingested(new_asset(f"g{i:02}"), actor="t")
            wake = Wake(kind="wait", lane="ars") if i % 2 else Wake(kind="dispatch", due=float(i))
            await store.assets.update(f"g{i:02}", expected=AssetState.INGESTED, wake=wake)
        traced: list[str] = []
        await store.run(lambda c: c.set_trace_callback(traced.append))
        await store.wakeups.due("dispatch", now=10.0)
        await store.wakeups.next_due("sync_poll")
        await store.wakeups.waiting("ars", limit=1)
        await store.assets.in_states([AssetState.QUARANTINED, AssetState.FAILED], after="", limit=10)
        await store.requests.pending()
        await store.intake.rejections(status="open", limit=10)
        await store.run(lambda c: c.set_trace_callback(None))
        selects = [sql for sql in traced if sql.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 6
        for sql in selects:
            plan = await store.run(
                lambda c, q=sql: " | ".join(str(r[-1]) for r in c.execute("EXPLAIN QUERY PLAN " + q))
            )
            scans = [step for step in plan.split(" | ") if step.startswith("SCAN")]
            # the one scan allowed walks a partial index that holds only the pending rows
            assert all(step.endswith("USING INDEX requests_pending") for step in scans), (sql, plan)


async def test_wakeups_of_a_lane_are_released_at_once(tmp_path: Path) -> None:
    """Everything waiting for a lane becomes due for dispatch when it is released; others keep their wait."""
    async with open_store(tmp_path / "t.db", clock=lambda: 100.0) as store:
        for guid, lane in (("a", "ars"), ("b", "ars"), ("c", "hold:workstation:i/w")):
            await store.assets.record_ingested(new_asset(guid), actor="t")
            await store.assets.update(guid, expected=AssetState.INGESTED, wake=Wake(kind="wait", lane=lane))
        assert await store.wakeups.count_waiting() == {"ars": 2, "hold:workstation:i/w": 1}
        assert await store.wakeups.release("ars", reason="back") == 2
        assert [w.entity_id for w in await store.wakeups.due("dispatch", now=100.0)] == ["a", "b"]
        record = await store.assets.get("c")
        assert record is not None
        assert record.wake == Wake(kind="wait", lane="hold:workstation:i/w")


@pytest.mark.slow
async def test_resume_covers_every_unfinished_asset(tmp_path: Path) -> None:
    """After a restart every drivable asset gets a wake-up, however many there are (here more than 100 000)."""
    count = 100_002
    async with open_store(tmp_path / "t.db") as store:

        def bulk(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "INSERT INTO assets (guid, state, pipeline, institution, collection, workstation, session, local_dir, "
                "allocation_mb, state_since, created_at, updated_at) VALUES (?, ?, 'p','i','c','w','s','/l',1,0,0,0)",
                ((f"g{i:07}", "syncing" if i == 0 else "ingested") for i in range(count)),
            )

        await store.run(bulk)
        dispatched, polled, released = await store.wakeups.resume_all(
            drivable=[AssetState.INGESTED], polled=[AssetState.SYNCING], paused_lanes=[]
        )
        assert (dispatched, polled, released) == (count - 1, 1, 0)
        assert len(await store.wakeups.due("dispatch", now=1e12, limit=count)) == count - 1


async def test_resume_releases_waits_on_lanes_that_are_not_paused(tmp_path: Path) -> None:
    """A wait must never outlive its lane: waits on lanes not paused any more are released at a restart."""
    async with open_store(tmp_path / "t.db") as store:
        for guid, lane in (("a", "ars"), ("b", "intake")):
            await store.assets.record_ingested(new_asset(guid), actor="t")
            await store.assets.update(guid, expected=AssetState.INGESTED, wake=Wake(kind="wait", lane=lane))
        _, _, released = await store.wakeups.resume_all(drivable=[], polled=[], paused_lanes=["ars"])
        assert released == 1
        b = await store.assets.get("b")
        assert b is not None
        assert b.wake is not None
        assert b.wake.kind == "dispatch"


async def test_migrating_a_version_1_database_keeps_intents_and_wake_ups(tmp_path: Path) -> None:
    """A database of the first release is migrated: intents and wake-ups carried over, in_ars only where ARS has it."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        connection.executescript(MIGRATIONS[0])
        connection.execute("INSERT INTO schema_version VALUES (1)")
        for guid, state, intent, wake in (
            ("a", "ingested", "create", None),
            ("b", "syncing", None, 42.0),
            ("q", "quarantined", None, None),  # bad metadata: never reached ARS
            ("c", "quarantined", None, None),  # quarantined after ARS created it
        ):
            connection.execute(
                "INSERT INTO assets (guid, state, pipeline, institution, collection, workstation, session, local_dir, "
                "allocation_mb, intent, next_wake, state_since, created_at, updated_at) "
                "VALUES (?,?, 'p','i','c','w','s','/l',1,?,?,0,0,0)",
                (guid, state, intent, wake),
            )
        for guid, from_state, to_state, trigger in (
            ("q", "ingested", "quarantined", "quarantine"),
            ("c", "ingested", "created_in_ars", "create"),
            ("c", "created_in_ars", "quarantined", "quarantine"),
        ):
            connection.execute(
                "INSERT INTO events (guid, from_state, to_state, trigger, reason, actor, at) "
                "VALUES (?,?,?,?,'r','t',0)",
                (guid, from_state, to_state, trigger),
            )
    async with open_store(path) as store:
        a, b = await store.assets.get("a"), await store.assets.get("b")
        assert a is not None
        assert a.intents == frozenset({"create"})
        assert a.in_ars is False
        assert b is not None
        assert b.wake == Wake(kind="sync_poll", due=42.0, reason="migrated")
        assert b.in_ars is True
        q, c = await store.assets.get("q"), await store.assets.get("c")
        assert q is not None
        assert q.in_ars is False  # quarantined before any create: ARS never had it
        assert c is not None
        assert c.in_ars is True  # its events show the create
    with sqlite3.connect(path) as connection:
        assert schema_version(connection) == len(MIGRATIONS)


async def test_store_commits_durably(tmp_path: Path) -> None:
    """The writer commits with synchronous=FULL, so a commit is on disk before the next side effect."""
    async with open_store(tmp_path / "t.db") as store:
        assert await store.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
        assert await store.run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"


async def test_redelivery_replaces_files_and_metadata_and_resolves_rejections(tmp_path: Path) -> None:
    """Corrected files of a quarantined asset replace the old ones, with an event, and close its rejections."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a", files=("tif", "cr3")), actor="t")
        await store.assets.transition(
            "a", AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="bad", actor="t"
        )
        await store.intake.record_rejection(
            Rejection(session="/ndrive/ws/s2", name="a", guid="a", reason="duplicate", at=1.0)
        )
        fixed = new_asset("a", "/ndrive/ws/s3", files=("tif", "dng"))
        record = await store.assets.redeliver(fixed, expected=AssetState.QUARANTINED, actor="watcher")
        assert record.state is AssetState.INGESTED
        assert record.session == "/ndrive/ws/s3"
        assert sorted(f.record.name for f in await store.assets.files("a")) == ["a.dng", "a.tif"]
        last = (await store.assets.events("a"))[-1]
        assert last.trigger == "redeliver"
        assert "a.cr3" in last.reason
        assert "a.dng" in last.reason
        assert await store.intake.rejections(status="open") == []


async def test_late_file_is_added_only_before_anything_went_to_ars(tmp_path: Path) -> None:
    """A late sibling joins an `ingested` asset with no intent; once its create started, it is refused."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a"), actor="t")
        raw = FileRecord(name="a.dng", kind=FileKind.RAW, size=5, crc32=7, local_path="/local/late/a.dng")
        assert await store.assets.add_late_file("a", raw, "/n/imported_s1/a.dng", allocation_mb=4, actor="w")
        record = await store.assets.get("a")
        assert record is not None
        assert record.allocation_mb == 4
        assert {f.record.name for f in await store.assets.files("a")} == {"a.tif", "a.dng"}
        await store.assets.open_intent("a", "create", expected=AssetState.INGESTED, actor="actor")
        other = FileRecord(name="a.cr3", kind=FileKind.RAW, size=5, crc32=8, local_path="/local/late/a.cr3")
        assert not await store.assets.add_late_file("a", other, "/n/imported_s1/a.cr3", allocation_mb=6, actor="w")
        assert {f.record.name for f in await store.assets.files("a")} == {"a.tif", "a.dng"}


async def test_rename_intent_then_record_moves_every_ndrive_path(tmp_path: Path) -> None:
    """The rename target is recorded before the rename; recording it moves every file's N-Drive path."""
    async with open_store(tmp_path / "t.db") as store:
        await store.assets.record_ingested(new_asset("a", "/n/ws/s1"), actor="t")
        await store.assets.record_ingested(new_asset("b", "/n/ws/s10"), actor="t")  # a longer name, same prefix
        await store.intake.start_rename("/n/ws/s1", "/n/ws/imported_s1_2", actor="w")
        assert await store.intake.pending_renames() == {"/n/ws/s1": "/n/ws/imported_s1_2"}
        await store.intake.finish_rename(
            "/n/ws/s1", "/n/ws/imported_s1_2", workstation="ws", assets=1, rejected=0, actor="w"
        )
        assert await store.intake.pending_renames() == {}
        [a] = await store.assets.files("a")
        [b] = await store.assets.files("b")
        assert a.ndrive_path == "/n/ws/imported_s1_2/a.tif"
        assert b.ndrive_path == "/n/ws/s10/b.tif"
        session = await store.intake.session("/n/ws/s1")
        assert session is not None
        assert session.imported_path == "/n/ws/imported_s1_2"


async def test_rejections_have_a_lifecycle(tmp_path: Path) -> None:
    """A rejection is open until a later import of its asset resolves it or an operator acknowledges it."""
    async with open_store(tmp_path / "t.db") as store:
        first = Rejection(session="/n/s1", name="x.txt", guid=None, reason="stray", at=1.0)
        assert await store.intake.record_rejection(first)
        assert not await store.intake.record_rejection(first)  # the same again is not new
        guid_rejection = Rejection(session="/n/s1", name="g", guid="g", reason="bad json", at=1.0)
        await store.intake.record_rejection(guid_rejection)
        [stray_id] = [r.id for r in await store.intake.rejections() if r.name == "x.txt"]
        assert await store.intake.acknowledge(ids=[stray_id], reason="moved it", actor="op") == [stray_id]
        await store.assets.record_ingested(new_asset("g", "/n/s2"), actor="t")
        assert await store.intake.rejections(status="open") == []
        closed = {r.name: (r.status, r.closed_reason) for r in await store.intake.rejections(status=None)}
        assert closed["x.txt"] == ("acknowledged", "acknowledged by op: moved it")
        assert closed["g"] == ("resolved", "imported from /n/s2")
        assert not await store.intake.record_rejection(first)  # the same rejection again: it stays acknowledged
        assert {r.name for r in await store.intake.rejections(status="open")} == set()


async def test_an_acknowledged_rejection_stays_closed_unless_its_reason_changes(tmp_path: Path) -> None:
    """The same rejection seen again leaves a closed row closed; a new reason reopens it, or updates an open one."""
    async with open_store(tmp_path / "t.db") as store:
        first = Rejection(session="/n/s1", name="x.txt", guid=None, reason="stray", at=1.0)
        assert await store.intake.record_rejection(first)
        changed = Rejection(session="/n/s1", name="x.txt", guid=None, reason="stray, and empty", at=2.0)
        assert await store.intake.record_rejection(changed)  # open, with a new reason: updated
        [row] = await store.intake.rejections()
        assert row.reason == "stray, and empty"
        await store.intake.acknowledge(ids=[row.id], reason="known", actor="op")
        for _ in range(3):  # every look at the folder, every restart
            assert not await store.intake.record_rejection(changed)
        assert await store.intake.rejections(status="open") == []
        assert await store.intake.record_rejection(first)  # another problem than the one acknowledged
        [reopened] = await store.intake.rejections(status="open")
        assert (reopened.id, reopened.reason, reopened.closed_reason) == (row.id, "stray", "")


async def test_store_survives_reopen_with_state(tmp_path: Path) -> None:
    """State written before closing is there after reopening (persist first)."""
    path = tmp_path / "t.db"
    async with open_store(path) as store:
        await store.assets.record_ingested(new_asset("a"), actor="t")
        await store.assets.open_intent("a", "create", expected=AssetState.INGESTED, actor="t")
    async with open_store(path) as store:
        record = await store.assets.get("a")
        assert record is not None
        assert record.intents == frozenset({"create"})
        assert isinstance(store, Store)


async def test_the_reader_never_waits_for_the_writer(tmp_path: Path) -> None:
    """While a writer holds the write lock mid-transaction, the read-only reader still reads (and cannot write)."""
    path = tmp_path / "t.db"
    async with open_store(path) as store:
        await store.assets.record_ingested(new_asset("a"), actor="t")
    writer = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE assets SET reason = 'uncommitted'")
        with open_reader(path) as reader:
            record = reader.asset("a")
            assert record is not None
            assert record.reason == ""  # the committed state, not the writer's
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader._c.execute("UPDATE assets SET reason = 'x'")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_one_daemon_per_database(tmp_path: Path) -> None:
    """A second holder of the daemon lock is refused with the first one's PID; the lock goes with its holder."""
    database = tmp_path / "t.db"
    assert holder_of(database) is None
    with daemon_lock(database):
        assert holder_of(database) == os.getpid()
        with pytest.raises(DaemonRunning, match=f"PID {os.getpid()}"):
            with daemon_lock(database):
                pass
    assert holder_of(database) is None


def test_a_status_look_at_the_lock_does_not_stop_a_daemon_from_starting(tmp_path: Path) -> None:
    """A reader testing the lock (a shared lock for a moment) only delays daemon_lock; it does not refuse it."""
    database = tmp_path / "t.db"
    path = lock_path(database)
    path.touch()
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what holder_of does while `status` runs
        releaser = threading.Timer(0.06, fcntl.flock, (fd, fcntl.LOCK_UN))
        releaser.start()
        try:
            with daemon_lock(database):
                assert holder_of(database) == os.getpid()
        finally:
            releaser.join()
    finally:
        os.close(fd)


def test_the_lock_says_whether_a_daemon_or_a_command_holds_it(tmp_path: Path) -> None:
    """The lock file records the holder's role: a command is not reported as a daemon, and is refused as such."""
    database = tmp_path / "t.db"
    assert lock_holder(database) is None
    with daemon_lock(database, role="command"):
        assert lock_holder(database) == LockHolder(pid=os.getpid(), role="command")
        assert holder_of(database) is None  # no daemon runs: status must not say one does
        with pytest.raises(CommandRunning, match=f"another `integration` command \\(PID {os.getpid()}\\)"):
            with daemon_lock(database):
                pass
    with daemon_lock(database):
        assert lock_holder(database) == LockHolder(pid=os.getpid(), role="daemon")
        with pytest.raises(DaemonRunning, match="another daemon") as refused:
            with daemon_lock(database, role="command"):
                pass
        assert not isinstance(refused.value, CommandRunning)
        assert refused.value.pid == os.getpid()
    assert lock_holder(database) is None


def test_a_killed_daemon_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The lock is the kernel's: a SIGKILLed holder releases it at once."""
    database = tmp_path / "t.db"
    code = (
        "import sys, time; from pathlib import Path; from integration.store import daemon_lock\n"
        f"with daemon_lock(Path({str(database)!r})):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        assert holder_of(database) == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder_of(database) is None
    finally:
        if holder.stdout is not None:
            holder.stdout.close()


async def test_a_request_no_daemon_took_is_withdrawn_and_never_carried_out(tmp_path: Path) -> None:
    """withdraw_request answers a pending request as withdrawn, so a later daemon never takes it."""
    database = tmp_path / "t.db"
    async with open_store(database):
        pass
    request_id = submit_request(database, kind="retry", body="{}", requested_by="op")
    assert withdraw_request(database, request_id, why="the daemon did not answer within 1 s")
    record = read_request(database, request_id)
    assert record is not None
    assert record.status == "failed"
    assert "withdrawn: the daemon did not answer within 1 s" in record.result
    assert not withdraw_request(database, request_id)  # answered already
    async with open_store(database) as store:
        assert await store.requests.pending() == []
        await store.requests.finish(request_id, ok=True, result="[]")  # a late answer does not overwrite it
    record = read_request(database, request_id)
    assert record is not None
    assert record.status == "failed"


async def test_a_request_a_daemon_took_is_not_withdrawn_but_answered(tmp_path: Path) -> None:
    """Once a daemon took a request, the command cannot withdraw it (it waits for the answer) unless it holds
    the lock, which means the daemon that took it has stopped."""
    database = tmp_path / "t.db"
    async with open_store(database) as store:
        request_id = submit_request(database, kind="ack", body="{}", requested_by="op")
        [taken] = await store.requests.pending()
        assert taken.id == request_id
        assert not withdraw_request(database, request_id)
        await store.requests.finish(request_id, ok=True, result='{"acknowledged": []}')
        record = read_request(database, request_id)
        assert record is not None
        assert record.status == "done"
        other = submit_request(database, kind="ack", body="{}", requested_by="op")
        assert [r.id for r in await store.requests.pending()] == [other]
        assert [r.id for r in await store.requests.pending()] == [other]  # taken again until answered
    assert withdraw_request(database, other, why="the daemon stopped", even_if_taken=True)
