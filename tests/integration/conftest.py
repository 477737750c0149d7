"""Fixtures for tests that run the daemon against the ARS emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from daemon_support import ArsServer, serve_ars


@pytest.fixture
async def ars(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[ArsServer]:
    """The ARS emulator served on 127.0.0.1 (free port), ERDA tick every 0.1 s."""
    return await serve_ars(nursery, tmp_path)
