"""Render the transition table as a Mermaid state diagram (docs/state-machine.md embeds it)."""

from __future__ import annotations

from integration.state_machines._asset import PREVIOUS, TABLE, AssetState

__all__ = ["DIAGRAM_BEGIN", "DIAGRAM_END", "mermaid_diagram"]

DIAGRAM_BEGIN = "<!-- BEGIN GENERATED DIAGRAM: integration.state_machines.mermaid_diagram -->"
DIAGRAM_END = "<!-- END GENERATED DIAGRAM -->"


def mermaid_diagram() -> str:
    """The Mermaid ``stateDiagram-v2`` source of the parent-asset machine, one edge per (source, trigger)."""
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {AssetState.DETECTED.value}"]
    for row in TABLE:
        for source in row.sources:
            if row.dest == PREVIOUS:
                lines.append(f"    {source.value} --> previous_state: {row.trigger.value}")
            else:
                lines.append(f"    {source.value} --> {row.dest}: {row.trigger.value}")
    lines.append(f"    {AssetState.FINALIZED.value} --> [*]")
    lines.append("```")
    return "\n".join(lines)
