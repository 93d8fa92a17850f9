"""Imports flow one way: schemas <- bridge <- server <- (dap, lsp), all under ``canopy``. The
event log also stays free of web-server and terminal frameworks. Read from the source, so a lazy
import inside a function is caught too."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("schemas", "bridge", "server", "dap", "lsp")
ALLOWED = {
    "schemas": set(),
    "bridge": {"schemas"},
    "server": {"schemas", "bridge"},
    "dap": {"schemas", "bridge", "server"},
    "lsp": {"schemas", "bridge", "server"},
}
FORBIDDEN = {
    "schemas": {"aiohttp", "sqlalchemy", "click", "rich"},
    "bridge": {"aiohttp.web", "click", "rich"},
    "server/runtime": {
        "aiohttp",
        "click",
        "rich",
        "canopy.server.api",
        "canopy.server.app",
        "canopy.server.cli",
    },
}


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by a file (relative imports stay inside its package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(layer: str) -> list[str]:
    found = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in sorted(imports_of(path)):
            parts = name.split(".")
            top = parts[1] if parts[0] == "canopy" and len(parts) > 1 else parts[0]
            if top in LAYERS and top != layer and top not in ALLOWED[layer]:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def forbidden(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in sorted(imports_of(path)):
            if any(name == b or name.startswith(b + ".") for b in FORBIDDEN[folder]):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_flow_one_way(layer: str) -> None:
    assert violations(layer) == []


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_domains_stay_free_of_frameworks(folder: str) -> None:
    """The event log knows no web server; the runtime knows no protocol, web or terminal."""
    assert forbidden(folder) == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.py"
    leaky.write_text("def f():\n    from canopy.server.app import create_app\n", encoding="utf-8")
    assert "canopy.server.app" in imports_of(leaky)


RUNTIME: Final = "canopy.server.runtime"
DAP_CONTRACT: Final = {
    "canopy.server.runtime.control",  # ExecutionControl, its data types and errors
    "canopy.server.runtime.breakpoints",  # BreakpointSpec, WatchSpec, ExceptionFilter, Position
    "canopy.server.runtime.engine",  # Mode, RunState, StepKind, CaptureLevel, Notification
}
"""What of the runtime the debug adapter may import: the control contract and its types."""
DAP_EMBEDS: Final = {"dap/controls.py": {"canopy.server.runtime.inprocess"}}
"""The one place that starts the runtime inside the adapter (``pod: embedded``)."""


def runtime_imports_beyond_the_contract(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        where = str(path.relative_to(ROOT))
        allowed = DAP_CONTRACT | DAP_EMBEDS.get(where, set())
        for name in sorted(imports_of(path)):
            inside = name == RUNTIME or name.startswith(RUNTIME + ".")
            if inside and not any(name == a or name.startswith(a + ".") for a in allowed):
                found.append(f"{where} imports {name}")
    return found


def test_dap_speaks_only_the_control_contract() -> None:
    """Runtime work (evaluating, completing, key conversions) happens behind the contract,
    so every client (DAP, HTTP, LSP) gets the same answers."""
    assert runtime_imports_beyond_the_contract("dap") == []
