"""``integration status [GUID]``: the overview, or one asset, read-only (never the daemon's write lock)."""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer

from integration.cli._common import ConfigOption, fail, load_or_exit
from integration.errors import ConfigError
from integration.status import collect_asset, collect_status, render_asset, render_status

__all__ = ["status"]


def status(
    guid: Annotated[str | None, typer.Argument(help="One asset's GUID (or its start) to show in detail.")] = None,
    *,
    config_path: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Counts per state, lanes, and everything that needs a human — or one asset with its whole story."""
    config = load_or_exit(config_path)
    try:
        if guid is None:
            report = collect_status(config)
            _print(report, render_status(report) if not as_json else None)
            return
        found = collect_asset(config, guid)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if isinstance(found, list):
        if not found:
            raise fail(f"no asset {guid} is recorded", code=1)
        typer.echo(f"no asset is exactly {guid}; these start with it:", err=True)
        for candidate in found:
            typer.echo(f"  {candidate}", err=True)
        raise typer.Exit(1)
    _print(found, render_asset(found) if not as_json else None)


def _print(report: msgspec.Struct, text: str | None) -> None:
    if text is None:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        typer.echo(text)
