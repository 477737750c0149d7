"""docs/ars-errors.md embeds the classification table generated from the code, and it must not drift."""

from __future__ import annotations

from pathlib import Path

from integration.adapters.ars import describe_classification

DOC = Path(__file__).resolve().parents[2] / "docs" / "ars-errors.md"
BEGIN = "<!-- BEGIN GENERATED TABLE: integration.adapters.ars.describe_classification -->"
END = "<!-- END GENERATED TABLE -->"


def test_doc_table_matches_the_code() -> None:
    """The table in docs/ars-errors.md equals describe_classification() (paste the printed table if not)."""
    embedded = DOC.read_text(encoding="utf-8").split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert embedded == describe_classification(), "regenerate the table:\n" + describe_classification()
