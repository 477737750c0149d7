"""`integration demo`: every generated asset to `finalized` with its barcode found; a reused work folder counts
only the assets of this run."""

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
    assert output.count("2/2 assets finalized") == 2
    assert output.count("barcodes: 2/2 found exactly as generated") == 2
    with open_reader(tmp_path / "track.sqlite3") as reader:
        assert reader.counts_by_state() == {"finalized": 4}
    ndrive_files = [p for p in (tmp_path / "ndrive").rglob("*") if p.is_file()]
    assert ndrive_files == []  # every N-Drive copy deleted after its verified sync
    reports = sorted((tmp_path / "storage" / "reports").rglob("*.txt"))
    assert len(reports) == 4
    assert all("finalized" in r.read_text() for r in reports)
