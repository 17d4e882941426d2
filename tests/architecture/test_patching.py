"""No module patches another package's code: what a class or module offers, it declares
itself, and a layer above hands it what it cannot know through a door it declares (an
admin site's registration options, a signal, an argument), never by assigning to it.

A reader of a class then finds all of it in the class, and its behaviour does not depend
on whether some other module was imported first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.architecture.test_layers import ROOT, ids, layer_of, modules


def foreign_names(tree: ast.AST, package: str) -> set[str]:
    """The names a module binds to what it imports from the project's other packages."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if layer_of(alias.name) is not None and alias.name.split(".")[0] != package:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if layer_of(node.module) is not None and node.module.split(".")[0] != package:
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def assigned(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    else:
        return []
    found = []
    for target in targets:
        found += target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
    return [target for target in found if isinstance(target, ast.Attribute)]


@pytest.mark.parametrize("path", modules(), ids=ids(modules()))
def test_no_module_assigns_to_another_packages_classes_or_modules(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    foreign = foreign_names(tree, path.relative_to(ROOT).parts[0])
    patched = [
        f"line {target.lineno}: {ast.unparse(target)}"
        for node in ast.walk(tree)
        for target in assigned(node)
        if root_name(target) in foreign
    ]
    patched += [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("setattr", "delattr")
        and node.args
        and root_name(node.args[0]) in foreign
    ]
    assert patched == []
