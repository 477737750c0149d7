"""Pure state machines: transition tables as data, one ``apply`` function, no I/O.

This package imports nothing that does I/O (no trio, httpx, sqlite3, store); tests/test_layers.py enforces it.
"""

from integration.state_machines._asset import (
    ACTIVE_STATES,
    BACKWARD_TRIGGERS,
    PREVIOUS,
    TABLE,
    TERMINAL_STATES,
    AssetState,
    AssetTrigger,
    Outcome,
    Transition,
    apply,
    build_machine,
    is_forward,
)
from integration.state_machines._diagram import DIAGRAM_BEGIN, DIAGRAM_END, mermaid_diagram

__all__ = [
    "ACTIVE_STATES",
    "BACKWARD_TRIGGERS",
    "DIAGRAM_BEGIN",
    "DIAGRAM_END",
    "PREVIOUS",
    "TABLE",
    "TERMINAL_STATES",
    "AssetState",
    "AssetTrigger",
    "Outcome",
    "Transition",
    "apply",
    "build_machine",
    "is_forward",
    "mermaid_diagram",
]
