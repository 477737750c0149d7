"""The import layers of docs/architecture.md, enforced: a forbidden import edge fails this test."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "integration"

#: layer -> integration layers it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "domain": {"errors"},
    "state_machines": {"errors"},
    "config": {"errors"},
    "log_setup": set(),
    "store": {"errors", "domain", "state_machines"},
    "adapters": {"errors", "domain", "config"},
    "emulators": {"errors"},
    "hpc_client": {"errors", "domain"},
    "api": {"errors", "domain", "state_machines", "config", "store", "adapters"},
    "actors": {"errors", "domain", "state_machines", "config", "store", "adapters", "api"},
    "status": {"errors", "state_machines", "store", "config", "adapters"},
    "demo": {
        "api",
        "errors",
        "domain",
        "state_machines",
        "config",
        "store",
        "adapters",
        "actors",
        "emulators",
        "log_setup",
        "status",
    },
    "cli": {
        "errors",
        "config",
        "log_setup",
        "actors",
        "adapters",
        "store",
        "status",
        "demo",
        "emulators",
        "hpc_client",
    },
    "__main__": {"cli"},
    "__init__": set(),
}

#: third-party modules that mean I/O; the pure layers must not import them.
IO_MODULES = {"trio", "httpx", "sqlite3", "asyncssh", "hypercorn", "starlette", "socket", "subprocess", "os"}
PURE_LAYERS = {"state_machines", "domain", "errors"}


def layer_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def imports_of(path: Path, layer: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("integration." + layer)  # relative imports stay inside their layer
            elif node.module:
                names.add(node.module)
    return names


def violations(path: Path, layer: str) -> list[str]:
    """The forbidden imports of the module at ``path`` if it belonged to ``layer``."""
    found = []
    for name in sorted(imports_of(path, layer)):
        if name.startswith("integration."):
            target = name.split(".")[1]
            if target != layer and target not in ALLOWED[layer]:
                found.append(name)
        if layer in PURE_LAYERS and name.split(".")[0] in IO_MODULES:
            found.append(name)
    return found


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_layers(path: Path) -> None:
    """Every module imports only the integration layers its own layer may use (pure layers: no I/O)."""
    layer = layer_of(path)
    assert layer in ALLOWED, f"{layer} is not a known layer: add it to ALLOWED and docs/architecture.md"
    assert violations(path, layer) == []


def test_a_forbidden_edge_is_detected(tmp_path: Path) -> None:
    """The checker flags I/O in a pure layer and an adapter importing actors (it cannot pass vacuously)."""
    fake = tmp_path / "mod.py"
    fake.write_text("import trio\nfrom integration.actors import drive_asset\n", encoding="utf-8")
    assert violations(fake, "state_machines") == ["integration.actors", "trio"]
    assert violations(fake, "adapters") == ["integration.actors"]


#: What only the demo and the image modules (``[demo]``, ``[hpc]`` extras) may import.
IMAGING_MODULES = ("PIL", "numpy", "rawpy", "barcode", "pidng", "pyzbar", "zxingcpp", "pytesseract", "tifffile")
#: The daemon's own packages: installable without the imaging and demo libraries.
DAEMON_PACKAGES = ("cli", "actors", "adapters", "store", "status", "state_machines", "domain", "config", "emulators")


def test_the_daemon_installs_without_imaging_libraries() -> None:
    """The daemon, the CLI and the emulator import with every imaging/demo library unavailable ([demo] extra)."""
    blocked = ", ".join(repr(name) for name in IMAGING_MODULES)
    code = (
        "import sys\n"
        f"for name in ({blocked},):\n"
        "    sys.modules[name] = None  # importing it raises ImportError\n"
        + "".join(f"import integration.{package}\n" for package in DAEMON_PACKAGES)
        + "from integration.cli import app\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_imaging_guard_detects_an_imaging_import() -> None:
    """The guard above fails when a daemon module imports an imaging library (it cannot pass vacuously)."""
    code = "import sys\nsys.modules['PIL'] = None\nimport integration.demo\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "PIL" in done.stderr
