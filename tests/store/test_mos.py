"""The MOS table: links both ways, idempotent links, a changed label id unlinked from its old partners."""

from __future__ import annotations

from pathlib import Path

import trio

from actor_support import harness
from asset_support import guid_of, record
from integration.store import MosEntry


def entry(n: int, label_id: str = "ws_2024-08-08_MOS-1", *, label: bool = False) -> MosEntry:
    first = "" if label else f"NHMD-{n:04d}"
    return MosEntry(guid=guid_of(n), institution="test-institution", unique_label_id=label_id,
                    disposable_id=label_id.rsplit("_", 1)[1], label=label,
                    spid=f"test-institution_test-collection_{first}" if first else "NOT_AVAILABLE",
                    first_barcode=first)  # fmt: skip


async def test_links_go_both_ways_and_a_repeat_changes_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for n in (1, 2, 3):
            await record(h, guid_of(n))
        first = await h.store.mos.link(entry(1, label=True), actor="test")
        assert first.connections == ()
        await h.store.mos.link(entry(2), actor="test")
        third = await h.store.mos.link(entry(3), actor="test")
        assert set(third.connections) == {guid_of(1), guid_of(2)}
        again = await h.store.mos.link(entry(3), actor="test")
        assert again == third
        label = await h.store.mos.get(guid_of(1))
        assert label is not None
        assert set(label.connections) == {guid_of(2), guid_of(3)}
        assert {p.guid for p in await h.store.mos.partners(guid_of(1))} == {guid_of(2), guid_of(3)}
        notes = [e.reason for e in await h.store.assets.events(guid_of(3)) if e.trigger == "mos_linked"]
        assert len(notes) == 1  # the repeat wrote no second note
        assert "MOS ws_2024-08-08_MOS-1 (specimen test-institution_test-collection_NHMD-0003)" in notes[0]
        label_notes = [e.reason for e in await h.store.assets.events(guid_of(1)) if e.trigger == "mos_linked"]
        assert len(label_notes) == 3  # its own link, then one per asset that joined it


async def test_a_changed_label_id_leaves_its_old_partners(tmp_path: Path) -> None:
    """The barcode job ran again (an operator's retry) and read another disposable code: the asset moves to the
    new label id, and its old partner no longer lists it."""
    async with harness(tmp_path) as h:
        for n in (1, 2, 3):
            await record(h, guid_of(n))
        await h.store.mos.link(entry(1, label=True), actor="test")
        await h.store.mos.link(entry(2), actor="test")
        await h.store.mos.link(entry(3, "ws_2024-08-08_MOS-2", label=True), actor="test")
        moved = await h.store.mos.link(entry(2, "ws_2024-08-08_MOS-2"), actor="test")
        assert moved.connections == (guid_of(3),)
        old = await h.store.mos.get(guid_of(1))
        assert old is not None
        assert old.connections == ()
        assert await h.store.mos.partners(guid_of(1)) == []


async def test_two_assets_linking_at_once_see_each_other(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for n in range(1, 7):
            await record(h, guid_of(n))
        async with trio.open_nursery() as nursery:
            for n in range(1, 7):
                nursery.start_soon(lambda n=n: h.store.mos.link(entry(n, label=n == 1), actor="test"))
        for n in range(1, 7):
            found = await h.store.mos.get(guid_of(n))
            assert found is not None
            assert set(found.connections) == {guid_of(k) for k in range(1, 7)} - {guid_of(n)}
