"""Fixtures for the ARS emulator tests: default settings and an in-process emulator with a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulators.ars_support import Ars, open_ars
from integration.emulators.ars import EmulatorSettings


@pytest.fixture
def settings(tmp_path: Path) -> EmulatorSettings:
    """Default settings with files under the test's tmp dir and no ticker."""
    return EmulatorSettings(data_dir=str(tmp_path / "ars"), sync_tick_s=0)


@pytest.fixture
async def ars(settings: EmulatorSettings) -> AsyncIterator[Ars]:
    """The default in-process emulator with an authenticated client."""
    async with open_ars(settings) as opened:
        yield opened
