"""The three layers, read from the source: the kernel imports neither deployable, the API and
the workers import the kernel (and themselves) only, operator tools sit on top where nothing
imports them, and no import hides inside a function to dodge a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]
PROJECT = ("services", "workers", "groundwire", "migrations")

KERNEL = (
    "services.config",
    "services.db",
    "services.models",
    "services.statuses",
    "services.vectors",
    "services.broker",
    "services.batching",
    "services.runtime",
    "services.replicas",
    "services.metrics",
    "services.embedding",
    "services.documents",
    "services.file_types",
    "services.originals",
    "services.local_models",
    "services.spaces.build",
    "services.spaces.calibrate",
    "services.spaces.switch",
    "services.spaces.tables",
    "services.spaces.threshold",
    # the retrieval statement: what queries run, and what re-calibrating a new space runs too
    "services.query.retrieval",
    "services.query.candidates",
    "services.query.filters",
    "services.query.grounding",
    # what the workers' delivery tick needs of webhooks; their HTTP routes are the API's
    "services.webhooks.addresses",
    "services.webhooks.delivery",
    "services.webhooks.outbox",
    "services.webhooks.payloads",
)
API = (
    "services.app",
    "services.serve",
    "services.api",
    "services.access",
    "services.collections",
    "services.ingest",
    "services.query",
    "services.files",
    "services.answers",
    "services.rerank",
    "services.events",
    "services.webhooks.routes",
    "services.webhooks.schemas",
    "services.webhooks.service",
    "services.analytics",
    "services.console",
    "services.spaces.routes",
    "services.spaces.schemas",
    "services.spaces.service",
)
# Modules that may import at run time what one command, or one kind of embedder, needs (see
# each module's comment): the `openai` client alone takes a second to import.
DISPATCHERS = (
    "groundwire.cli",
    "services.embedding.registry",
    "services.answers.chat",
    "workers.formats.ocr",
    "workers.formats.audio",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), ast.parse(path.read_text(), str(path))


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer(name: str) -> str:
    if within(name, KERNEL) or name in ("services", "services.webhooks", "services.spaces"):
        return "kernel"
    if within(name, API):
        return "api"
    if within(name, ("workers",)):
        return "workers"
    if within(name, ("groundwire",)):
        return "tools"
    if within(name, ("migrations",)):
        return "migrations"
    raise AssertionError(f"{name} belongs to no layer: add it to one in this test")


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.module is None or node.level:
        return []
    return [node.module]


ALLOWED = {
    "kernel": {"kernel"},
    "api": {"kernel", "api"},
    "workers": {"kernel", "workers"},
    "migrations": {"kernel", "migrations"},
    "tools": {"kernel", "api", "tools", "migrations"},
}


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for name, tree in modules():
        own = layer(name)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in imported(node):
                if target.split(".")[0] not in PROJECT:
                    continue
                if layer(target) not in ALLOWED[own]:
                    wrong.append(f"{name} ({own}) imports {target} ({layer(target)})")
    assert wrong == []


def test_no_import_inside_a_function() -> None:
    hidden = []
    for name, tree in modules():
        if name in DISPATCHERS:
            continue
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    hidden.append(f"{name}.{function.name} imports {imported(node)}")
    assert hidden == []


def test_the_checks_see_a_violation() -> None:
    tree = ast.parse("from services.ingest.service import accept_documents")
    (node,) = tree.body
    assert isinstance(node, ast.ImportFrom)
    assert layer(imported(node)[0]) not in ALLOWED["workers"]
    assert layer("services.broker") == "kernel" and layer("workers.tasks") == "workers"
