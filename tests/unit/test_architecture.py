"""Dependencies point inward (architecture.md, principle 4):

    protocol <- core <- node <- adapters (transport, backends) <- bootstrap / cli

* `clarion.protocol` imports nothing from clarion but `clarion.protocol` and `clarion.types`;
* `clarion.core` imports only `clarion.protocol`, `clarion.types` and `clarion.core`
  (and `clarion.ports` for type hints under `TYPE_CHECKING`);
* neither does I/O, time or randomness: no `asyncio`, `socket`, `time`, `random`, `secrets`,
  `logging`; nor does `clarion.webhooks.holdback`, the webhook rules (time is passed in);
* `clarion.node` imports no adapter (`transport`, `backends`) nor `bootstrap` / `cli`;
* adapters (`transport`, `backends`, `webhooks`) do not import `bootstrap` / `cli`.

Imports are read with `ast` from the source, wherever they are in a module (functions
included), so nothing is imported to run this test.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "clarion"
FORBIDDEN_IN_PURE_LAYERS = frozenset({"asyncio", "socket", "time", "random", "secrets", "logging"})
ADAPTERS = ("clarion.transport", "clarion.backends", "clarion.webhooks")
# Modules that must stay free of I/O, clocks and randomness.
PURE = ("clarion.protocol", "clarion.core", "clarion.webhooks.holdback")
COMPOSITION = ("clarion.bootstrap", "clarion.cli")


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    line: int
    type_only: bool  # inside `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom, current: str, package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if package else current.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(source: str, current: str = "clarion.x", package: bool = False) -> list[Import]:
    """Every import in `source`, resolved to absolute names; `from a import b` yields `a.b`
    when that is itself a module of ours, else `a`."""
    found: list[Import] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(alias.name, node.lineno, type_only))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, current, package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if _is_our_module(sub) else base, node.lineno, type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(ast.parse(source), False)
    return found


def _is_our_module(name: str) -> bool:
    if not name.startswith("clarion."):
        return False
    rel = Path(*name.split("."))
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(name: str, found: list[Import]) -> list[str]:
    """The rule-breaking imports of module `name`, as readable lines."""
    problems: list[str] = []
    for imp in found:
        top = imp.module.split(".")[0]
        ours = top == "clarion"
        where = f"{name}:{imp.line} imports {imp.module}"
        in_protocol = within(name, "clarion.protocol")
        if in_protocol and ours and not within(imp.module, "clarion.protocol", "clarion.types"):
            problems.append(f"{where} (protocol may import only protocol and types)")
        if within(name, "clarion.core"):
            allowed = within(imp.module, "clarion.protocol", "clarion.types", "clarion.core")
            port_hint = imp.type_only and within(imp.module, "clarion.ports")
            if ours and not (allowed or port_hint):
                problems.append(f"{where} (core may import only protocol, types, core)")
        if within(name, *PURE) and top in FORBIDDEN_IN_PURE_LAYERS:
            problems.append(f"{where} (no I/O, clock or randomness in the pure layers)")
        if within(name, "clarion.node") and within(imp.module, *ADAPTERS, *COMPOSITION):
            problems.append(f"{where} (node must not know adapters or the composition root)")
        if within(name, *ADAPTERS) and within(imp.module, *COMPOSITION):
            problems.append(f"{where} (adapters must not import bootstrap/cli)")
    return problems


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_source_tree_is_where_we_look() -> None:
    names = {module_name(p) for p in MODULES}
    for expected in (
        "clarion.protocol.codec",
        "clarion.core.session",
        "clarion.node",
        "clarion.backends.memory",
        "clarion.config",
    ):
        assert expected in names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_dependency_direction(path: Path) -> None:
    name = module_name(path)
    found = imports_of(path.read_text(), name, is_package(path))
    assert violations(name, found) == []


# ---- the checker itself ------------------------------------------------------------------


def test_checker_resolves_relative_and_from_imports() -> None:
    src = "from . import codec\nfrom ..core import apps\nfrom clarion import node\n"
    found = [i.module for i in imports_of(src, "clarion.protocol.api")]
    assert found == ["clarion.protocol.codec", "clarion.core.apps", "clarion.node"]


def test_checker_finds_forbidden_imports_anywhere() -> None:
    src = (
        "import json\n"
        "def f():\n"
        "    import time as t\n"
        "    from asyncio import sleep\n"
        "class C:\n"
        "    from random import random\n"
        "import logging.handlers\n"
    )
    problems = violations("clarion.core.x", imports_of(src, "clarion.core.x"))
    assert len(problems) == 4
    assert all("pure layers" in p for p in problems)


def test_checker_allows_ports_only_for_type_hints_in_core() -> None:
    hinted = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from clarion.ports import Connection\n"
    )
    assert violations("clarion.core.x", imports_of(hinted, "clarion.core.x")) == []
    at_runtime = "from clarion.ports import Connection\n"
    assert violations("clarion.core.x", imports_of(at_runtime, "clarion.core.x"))
    # Protocol gets no such allowance.
    assert violations("clarion.protocol.x", imports_of(hinted, "clarion.protocol.x"))


def test_checker_flags_each_layer_rule() -> None:
    assert violations("clarion.protocol.x", imports_of("from clarion.core.apps import App"))
    assert violations("clarion.node", imports_of("from clarion.backends.memory import X"))
    assert violations("clarion.node", imports_of("import clarion.transport.server"))
    assert violations("clarion.transport.server", imports_of("from clarion.bootstrap import y"))
    assert violations("clarion.backends.memory", imports_of("from clarion import cli"))
    assert not violations(
        "clarion.node", imports_of("import asyncio\nfrom clarion.core import hub")
    )
    assert not violations("clarion.bootstrap", imports_of("from clarion.transport import server"))


def test_checker_treats_webhooks_as_an_adapter() -> None:
    assert violations("clarion.node", imports_of("from clarion.webhooks import WebhookDispatcher"))
    assert violations("clarion.webhooks.dispatcher", imports_of("from clarion import bootstrap"))
    assert not violations("clarion.bootstrap", imports_of("from clarion.webhooks import x"))
    # The delivery side does I/O and keeps time; that is its job.
    assert not violations("clarion.webhooks.dispatcher", imports_of("import asyncio\nimport time"))


@pytest.mark.parametrize("module", sorted(FORBIDDEN_IN_PURE_LAYERS))
def test_checker_keeps_the_holdback_rules_pure(module: str) -> None:
    problems = violations("clarion.webhooks.holdback", imports_of(f"import {module}"))
    assert len(problems) == 1
    assert "pure layers" in problems[0]


def test_holdback_rules_are_pure() -> None:
    path = PACKAGE / "webhooks" / "holdback.py"
    assert path.is_file()
    name = module_name(path)
    assert name == "clarion.webhooks.holdback"
    assert name in {module_name(p) for p in MODULES}
    forbidden = [
        imp.module
        for imp in imports_of(path.read_text(), name)
        if imp.module.split(".")[0] in FORBIDDEN_IN_PURE_LAYERS
    ]
    assert forbidden == []
