"""The packages import one way, bottom up, and the engine imports no web code.

    core <- expressions <- definitions <- connections <- apicalls <- hosts <- blueprints
         <- orders <- statemanager

A module may import its own package and the packages below it, never one above; imports
sit at the top of a module (an AppConfig's `ready` excepted, where Django wants them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [
    "core",
    "expressions",
    "definitions",
    "connections",
    "apicalls",
    "hosts",
    "blueprints",
    "orders",
    "statemanager",
]
# What the engine must not know: requests and responses, the API, the admin.
ENGINE_FORBIDDEN = (
    "django.http",
    "django.contrib.admin",
    "django.shortcuts",
    "django.template",
    "rest_framework",
    "drf_spectacular",
    "orders.api",
    "orders.admin",
    "orders.filters",
)


def modules() -> list[Path]:
    return sorted(
        path
        for layer in LAYERS
        for path in (ROOT / layer).rglob("*.py")
        if "migrations" not in path.parts
    )


def imported(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.module, node))
    return names


def layer_of(module: str) -> int | None:
    head = module.split(".")[0]
    return LAYERS.index(head) if head in LAYERS else None


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


@pytest.mark.parametrize("path", modules(), ids=ids(modules()))
def test_a_module_imports_only_its_own_layer_and_the_ones_below(path):
    own = LAYERS.index(path.relative_to(ROOT).parts[0])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    upward = [
        f"line {node.lineno}: {name}"
        for name, node in imported(tree)
        if (layer_of(name) or 0) > own
    ]
    assert upward == []


@pytest.mark.parametrize("path", modules(), ids=ids(modules()))
def test_project_imports_sit_at_the_top_of_a_module(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name == "ready":  # AppConfig.ready: Django's place for start-up imports
            continue
        nested += [
            f"line {node.lineno}: {name}"
            for name, node in imported(function)
            if layer_of(name) is not None
        ]
    assert nested == []


ENGINE = sorted((ROOT / "orders" / "engine").glob("*.py"))


@pytest.mark.parametrize("path", ENGINE, ids=ids(ENGINE))
def test_the_engine_imports_no_request_api_or_admin_code(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    web = [
        f"line {node.lineno}: {name}"
        for name, node in imported(tree)
        if name.startswith(ENGINE_FORBIDDEN)
    ]
    assert web == []


@pytest.mark.parametrize("path", modules(), ids=ids(modules()))
def test_no_module_is_over_450_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 450


# Inside orders/, the modules import one way too, bottom up: the row SQL and the status
# changes below the engine, the engine below what drives it, the web and the tasks on top.
ORDERS_TIERS = [
    ["orders.models", "orders.message_models"],
    ["orders.rows", "orders.bulk_rows", "orders.dotted_paths", "orders.counters"],
    [
        "orders.transitions",
        "orders.intake",
        "orders.hosts_held",
        "orders.step_data",
        "orders.correlation",
    ],
    ["orders.engine"],
    [
        "orders.claims",
        "orders.callbacks",
        "orders.messages",
        "orders.message_sources",
        "orders.batch",
        "orders.notifications",
        "orders.selectors",
        "orders.waiting_for",
        "orders.filters",
        "orders.retention",
        "orders.metrics",
    ],
    ["orders.cadence"],
    ["orders.reprocess"],
    ["orders.lanes", "orders.jobs", "orders.services", "orders.edits", "orders.alerts"],
    ["orders.impact"],
    ["orders.tasks", "orders.api", "orders.admin", "orders.management", "orders.apps"],
]


def orders_tier_of(module: str) -> int | None:
    for tier, names in enumerate(ORDERS_TIERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return tier
    return None


ORDERS_MODULES = [
    path
    for path in sorted((ROOT / "orders").rglob("*.py"))
    if "migrations" not in path.parts and path != ROOT / "orders" / "__init__.py"
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", ORDERS_MODULES, ids=ids(ORDERS_MODULES))
def test_a_module_of_orders_imports_only_its_own_tier_and_the_ones_below(path):
    own = orders_tier_of(module_name(path))
    assert own is not None, f"{module_name(path)} has no tier in ORDERS_TIERS"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    upward = [
        f"line {node.lineno}: {name}"
        for name, node in imported(tree)
        if name.startswith("orders.") and (orders_tier_of(name) or 0) > own
    ]
    assert upward == []
