"""`integration demo` on a reused work folder counts only the assets of this run."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from integration.demo import run_demo
from integration.store import open_reader

pytestmark = pytest.mark.slow


def test_a_reused_workdir_counts_only_this_runs_assets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second run in the same folder reports 2/2 for its own two specimens, with four in the database."""
    try:
        assert run_demo(assets=2, workdir=tmp_path) == 0
        assert run_demo(assets=2, workdir=tmp_path) == 0
    finally:
        structlog.reset_defaults()  # the demo logged to its own (now closed) file
    output = capsys.readouterr().out
    assert output.count("2/2 assets synced") == 2
    with open_reader(tmp_path / "track.sqlite3") as reader:
        assert reader.counts_by_state() == {"synced": 4}
