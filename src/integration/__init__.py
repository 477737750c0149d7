"""DaSSCo integration: N-Drive -> ARS -> HPC, every asset an explicit, persisted state machine.

See docs/architecture.md for the map of subpackages and the import layers a test enforces.
"""

__version__ = "0.1.0"
