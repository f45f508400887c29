"""The layers of the package stay visible in its imports.

ports ← primitives ← domains ← snapshot ← store / cli / sync; backends implement
ports. Domain stores and primitives never import a backend; backends never
import a primitive or a domain store; moving state (snapshot) works on the
ports and the domain registry alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "stateport"

FORBIDDEN = {
    "ports": ("backends", "primitives", "domains", "snapshot", "store", "cli", "sync"),
    "primitives": ("backends", "domains", "snapshot", "store", "cli", "sync"),
    "domains": ("backends", "snapshot", "store", "cli", "sync"),
    "backends": ("primitives", "domains", "snapshot", "store", "cli", "sync"),
    "snapshot": ("backends", "primitives", "store", "cli", "sync"),
}


def _imported_layers(path: Path) -> set[str]:
    """The top-level stateport modules that ``path`` imports (relative or absolute)."""
    tree = ast.parse(path.read_text(), str(path))
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below the package
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "stateport" and len(parts) > 1:
                    found.add(parts[1])
            elif node.level <= depth + 1:
                # ``from .. import x`` climbs to the package root at level depth + 1
                here = list(path.relative_to(PACKAGE).parts[:-1])
                base = here[: len(here) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if target:
                    found.add(target[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "stateport" and len(parts) > 1:
                    found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downward_only(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no files in {layer}/"
    for path in files:
        wrong = _imported_layers(path) & set(FORBIDDEN[layer])
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"
