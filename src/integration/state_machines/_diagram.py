"""Render a transition table as a Mermaid state diagram (docs/state-machine.md embeds the asset's and the job's)."""

from __future__ import annotations

import enum
from typing import Any

from integration.state_machines._asset import ASSET_MACHINE
from integration.state_machines._machine import PREVIOUS, MachineSpec

__all__ = ["DERIVATIVE_DIAGRAM_BEGIN", "DIAGRAM_BEGIN", "DIAGRAM_END", "JOB_DIAGRAM_BEGIN", "mermaid_diagram"]

DIAGRAM_BEGIN = "<!-- BEGIN GENERATED DIAGRAM: integration.state_machines.mermaid_diagram -->"
JOB_DIAGRAM_BEGIN = "<!-- BEGIN GENERATED DIAGRAM: integration.state_machines.mermaid_diagram(JOB_MACHINE) -->"
DERIVATIVE_DIAGRAM_BEGIN = (
    "<!-- BEGIN GENERATED DIAGRAM: integration.state_machines.mermaid_diagram(DERIVATIVE_MACHINE) -->"
)
DIAGRAM_END = "<!-- END GENERATED DIAGRAM -->"


def mermaid_diagram(spec: MachineSpec[Any, Any] = ASSET_MACHINE) -> str:
    """The Mermaid ``stateDiagram-v2`` source of ``spec``, one edge per (source, trigger)."""
    lines = ["```mermaid", "stateDiagram-v2"]
    for row in spec.rows:
        if not row.sources:
            lines.append(f"    [*] --> {_name(row.dest)}: {row.trigger.value}")
        for source in row.sources:
            target = "previous_state" if row.dest == PREVIOUS else _name(row.dest)
            lines.append(f"    {source.value} --> {target}: {row.trigger.value}")
    for state in sorted(spec.terminal):
        lines.append(f"    {state.value} --> [*]")
    lines.append("```")
    return "\n".join(lines)


def _name(dest: enum.StrEnum | str) -> str:
    return dest.value if isinstance(dest, enum.StrEnum) else str(dest)
