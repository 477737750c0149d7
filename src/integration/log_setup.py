"""Configure structlog once, at the entry point. Modules only do ``log = structlog.get_logger()``.

On a TTY lines are readable (console renderer); otherwise one JSON object per line. Every line logged inside
an asset actor carries ``asset_guid`` through ``structlog.contextvars`` (isolated per trio task).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import stamina
import structlog

__all__ = ["configure_logging"]


def configure_logging(*, fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog: ``fmt`` is auto (JSON unless ``stream`` is a TTY), json or console."""
    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty()) if use_console else structlog.processors.JSONRenderer()
    )
    stamina.instrumentation.set_on_retry_hooks([])  # the ARS adapter logs its own ars_request_retry
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
