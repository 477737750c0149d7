"""Pure state machines: transition tables as data, one ``apply`` function, no I/O.

:mod:`._machine` is the core shared by every entity kind (a table, checked once, and its ``apply``);
:mod:`._asset` is the parent-asset lifecycle and who drives each of its states; :mod:`._job` the lifecycle of one
processing job of one asset; :mod:`._derivative` that of a derivative child asset. This package imports nothing
that does I/O (no trio, httpx, sqlite3, store); tests/test_layers.py enforces it.
"""

from integration.state_machines._asset import (
    ACTIVE_STATES,
    ASSET_MACHINE,
    BACKWARD_TRIGGERS,
    DRIVERS,
    NEEDS_HUMAN_STATES,
    RETRY_TARGETS,
    TABLE,
    TERMINAL_STATES,
    AssetState,
    AssetTrigger,
    Driver,
    Transition,
    apply,
    is_forward,
    states_driven_by,
)
from integration.state_machines._derivative import (
    DERIVATIVE_MACHINE,
    DERIVATIVE_TABLE,
    DerivativeState,
    DerivativeTrigger,
    apply_derivative,
)
from integration.state_machines._diagram import (
    DERIVATIVE_DIAGRAM_BEGIN,
    DIAGRAM_BEGIN,
    DIAGRAM_END,
    JOB_DIAGRAM_BEGIN,
    mermaid_diagram,
)
from integration.state_machines._job import (
    JOB_ACTIVE_STATES,
    JOB_MACHINE,
    JOB_TABLE,
    JOB_TERMINAL_STATES,
    JobState,
    JobTrigger,
    apply_job,
)
from integration.state_machines._machine import PREVIOUS, MachineSpec, Outcome, Row

__all__ = [
    "ACTIVE_STATES",
    "ASSET_MACHINE",
    "BACKWARD_TRIGGERS",
    "DERIVATIVE_DIAGRAM_BEGIN",
    "DERIVATIVE_MACHINE",
    "DERIVATIVE_TABLE",
    "DIAGRAM_BEGIN",
    "DIAGRAM_END",
    "DRIVERS",
    "JOB_ACTIVE_STATES",
    "JOB_DIAGRAM_BEGIN",
    "JOB_MACHINE",
    "JOB_TABLE",
    "JOB_TERMINAL_STATES",
    "NEEDS_HUMAN_STATES",
    "PREVIOUS",
    "RETRY_TARGETS",
    "TABLE",
    "TERMINAL_STATES",
    "AssetState",
    "AssetTrigger",
    "DerivativeState",
    "DerivativeTrigger",
    "Driver",
    "JobState",
    "JobTrigger",
    "MachineSpec",
    "Outcome",
    "Row",
    "Transition",
    "apply",
    "apply_derivative",
    "apply_job",
    "is_forward",
    "mermaid_diagram",
    "states_driven_by",
]
