"""The demo: generated herbarium specimens on an N-Drive, the ARS emulator and the daemon, in one command.

Also used by tests and benchmarks to make realistic input (sheets with a Code128 barcode and a label,
DNG raw siblings, v2_1_0 metadata JSON with valid GUIDs).
"""

from integration.demo._files import write_dng, write_plain_tiff
from integration.demo._run import DEMO_WORKSTATIONS, demo_config, demo_emulator_settings, run_demo
from integration.demo._sheet import render_sheet
from integration.demo._specimens import (
    DEFAULT_START,
    DEMO_UTC_OFFSET,
    TAXA,
    GeneratedAsset,
    SpecimenSpec,
    generate_session,
    make_barcode,
    make_guid,
    metadata_v2_1_0,
    write_plain_asset,
    write_specimen,
)

__all__ = [
    "DEFAULT_START",
    "DEMO_UTC_OFFSET",
    "DEMO_WORKSTATIONS",
    "TAXA",
    "GeneratedAsset",
    "SpecimenSpec",
    "demo_config",
    "demo_emulator_settings",
    "generate_session",
    "make_barcode",
    "make_guid",
    "metadata_v2_1_0",
    "render_sheet",
    "run_demo",
    "write_dng",
    "write_plain_asset",
    "write_plain_tiff",
    "write_specimen",
]
