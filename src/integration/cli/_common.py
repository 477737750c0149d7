"""What every command shares: loading the configuration or exiting 2 with every problem listed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from integration.config import Config, load_config
from integration.errors import ConfigError

__all__ = ["ConfigOption", "fail", "load_or_exit"]

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The TOML configuration file.")]


def fail(message: str, *, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_or_exit(path: Path) -> Config:
    """The configuration at ``path``; exits 2 listing every problem when it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2) from exc
