"""docs/state-machine.md embeds the diagram generated from the table, and it must not drift."""

from __future__ import annotations

from pathlib import Path

from integration.state_machines import DIAGRAM_BEGIN, DIAGRAM_END, TABLE, mermaid_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"


def test_doc_diagram_matches_table() -> None:
    """The Mermaid block in docs/state-machine.md equals mermaid_diagram() (paste the printed block if not)."""
    text = DOC.read_text(encoding="utf-8")
    embedded = text.split(DIAGRAM_BEGIN, 1)[1].split(DIAGRAM_END, 1)[0].strip()
    assert embedded == mermaid_diagram(), "regenerate the diagram block:\n" + mermaid_diagram()


def test_diagram_has_one_edge_per_table_row_and_source() -> None:
    """Every (source, trigger) of the table appears as an edge of the diagram."""
    diagram = mermaid_diagram()
    for row in TABLE:
        for source in row.sources:
            assert f"    {source.value} --> " in diagram
            assert f": {row.trigger.value}\n" in diagram + "\n"
