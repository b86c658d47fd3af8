"""The package's parts import each other only downwards (see each part's `__init__` docstring)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "moderation"
TOP = {"moderation", "moderation.comment", "moderation.errors", "moderation.settings"}
# part -> the parts it may import (besides itself and the top-level modules)
ALLOWED = {
    "core": set(),
    "policy": {"core"},
    "store": {"core", "policy"},
    "checking": {"core", "policy", "store"},
    "learning": {"core", "policy", "store"},
    "web": {"core", "policy", "store", "checking", "learning"},
    "cli": {"core", "policy", "store", "checking", "learning", "web"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of ours that `path` imports, at module level or inside a function."""
    found: set[str] = set()
    module = _module(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
    return {name for name in found if name == "moderation" or name.startswith("moderation.")}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def _violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = _part(_module(path))
        for imported in _imports(path):
            target = _part(imported)
            if target is None:
                if imported not in TOP and imported.split(".")[1] not in ALLOWED:
                    problems.append(f"{_module(path)} imports {imported}, which belongs to no part")
                continue
            if source is None:
                problems.append(f"{_module(path)} (top level) imports {imported}: the top level imports no part")
            elif target != source and target not in ALLOWED[source]:
                problems.append(f"{_module(path)} ({source}) imports {imported} ({target})")
    return problems


def test_parts_import_only_downwards():
    """No part imports a part above it: the core knows nothing of the store or the web, and so on."""
    assert _violations() == []


def test_the_rule_checker_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The checker reports an import that goes upwards (so the test above cannot pass vacuously)."""
    fake = tmp_path / "moderation"
    (fake / "core").mkdir(parents=True)
    (fake / "web").mkdir()
    (fake / "core" / "__init__.py").write_text("")
    (fake / "web" / "__init__.py").write_text("")
    (fake / "core" / "model.py").write_text("def f():\n    from moderation.web import app\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert _violations() == ["moderation.core.model (core) imports moderation.web (web)"]


def test_every_part_says_what_it_owns_and_may_import():
    """Each part's `__init__` docstring names what it may import."""
    for part in ALLOWED:
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "import" in doc, part
