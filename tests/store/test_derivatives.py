"""The derivative repository: registration once, a GUID of another parent refused as the asset's data error,
transitions with events, and the megabytes the derivative lane limit counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.errors import DataError, StateConflict
from integration.state_machines import DerivativeState, DerivativeTrigger
from integration.store import NewDerivative, open_store

from .test_store import new_asset


def _made(guid: str, size: int = 3_000_000) -> NewDerivative:
    return NewDerivative(guid=guid, name=f"{guid}.tif", size_bytes=size, crc32=7, metadata_json=b"{}")


async def test_register_once_refuse_another_parents_guid_and_count_what_is_in_ars(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db") as store:
        for parent in ("p1", "p2"):
            await store.assets.record_ingested(new_asset(parent), actor="t")
        first = await store.derivatives.register("p1", [_made("d1"), _made("d2")], actor="t")
        again = await store.derivatives.register("p1", [_made("d1")], actor="t")
        assert [d.guid for d in first] == [d.guid for d in again] == ["d1", "d2"]
        with pytest.raises(DataError, match="already belongs to asset p1"):  # never a StateConflict: no loop
            await store.derivatives.register("p2", [_made("d1")], actor="t")
        assert await store.derivatives.open_megabytes() == 0  # registered is not in ARS yet
        await store.derivatives.transition("d1", DerivativeTrigger.CREATE, expected=DerivativeState.REGISTERED,
                                           actor="t", reason="created")  # fmt: skip
        assert await store.derivatives.open_megabytes() == 3
        assert await store.derivatives.open_megabytes(excluding_parent="p1") == 0
        with pytest.raises(StateConflict):
            await store.derivatives.transition("d1", DerivativeTrigger.UPLOAD, expected=DerivativeState.REGISTERED,
                                               actor="t")  # fmt: skip
        record = await store.derivatives.get("d1")
        assert record is not None
        assert record.state is DerivativeState.CREATED_IN_ARS
