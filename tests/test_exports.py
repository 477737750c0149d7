"""Each subpackage has one deliberate public surface: __all__ equals the public names it defines."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "integration.errors",
    "integration.domain",
    "integration.state_machines",
    "integration.store",
    "integration.actors",
    "integration.adapters.ars",
    "integration.adapters.ndrive",
    "integration.adapters.files",
    "integration.emulators.ars",
    "integration.demo",
    "integration.config",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    """__all__ names exist, and every public non-module attribute is in __all__."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, type(module))
        and getattr(value, "__module__", name).startswith(name)
    }
    assert public <= exported, f"{name} leaks {sorted(public - exported)}"
