"""The layout's rules, read from the code's own imports (ast, nothing is imported or run):
no import cycles, lazy imports included; only firehose/ talks to Firehose (its client, botocore's
signer); only telemetry/ imports prometheus_client; nothing outside cli/ imports the command
line; a short list of modules directly in producer/. README.md, Development, explains them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "producer"
MAX_TOP_LEVEL_MODULES = 16


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth. ``from a import b``
    names module ``a.b`` when that is a module of ours, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = _modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield (candidate if candidate in modules else node.module), node.lineno


@cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target, _ in _imports(path):
            # An import of a submodule runs its package's __init__ first: a real edge too.
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and prefix != "producer":
                    edges.add(prefix)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _offenders(allowed: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports of anything under ``forbidden`` from modules outside the ``allowed`` package."""
    out = []
    for name, path in _modules().items():
        if name == allowed or name.startswith(allowed + "."):
            continue
        for target, line in _imports(path):
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_only_firehose_speaks_firehose() -> None:
    # The Firehose client and botocore's SigV4 signer: one place sends to Firehose; aws/ signs
    # for the other AWS endpoints (the OpenSearch domain audit reads).
    signer = ("botocore.auth", "botocore.awsrequest", "botocore.signers")
    offenders = _offenders("producer.firehose", signer)
    assert [o for o in offenders if not o.startswith("producer/aws/")] == []
    mentions = [
        str(path.relative_to(ROOT))
        for name, path in _modules().items()
        if not name.startswith("producer.firehose")
        and any(
            s in path.read_text(encoding="utf-8") for s in ('client("firehose"', "create_client('firehose'")
        )
    ]
    assert mentions == []


def test_only_firehose_and_aws_import_the_aws_sdk() -> None:
    # Every other folder reaches AWS through firehose/ (Firehose) or aws/ (CloudFormation, S3,
    # CloudWatch, SigV4); bench/reference.py is the stock-client producer the benchmark compares
    # against, so it uses aiobotocore as a hand-written producer would.
    sdk = ("botocore", "aiobotocore", "boto3")
    offenders = _offenders("producer.firehose", sdk)
    allowed = ("producer/aws/", "producer/bench/reference.py")
    assert [o for o in offenders if not o.startswith(allowed)] == []


def test_only_telemetry_imports_prometheus_client() -> None:
    assert _offenders("producer.telemetry", ("prometheus_client",)) == []


@pytest.mark.parametrize("package", ["producer.cli"])
def test_nothing_outside_the_command_line_imports_it(package: str) -> None:
    outside = [o for o in _offenders(package, (package,)) if not o.startswith("producer/__main__.py")]
    assert outside == []


def test_producer_keeps_few_top_level_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_dunder_import() -> None:
    users = [
        str(p.relative_to(ROOT))
        for p in _modules().values()
        if "__import__(" in p.read_text(encoding="utf-8")
    ]
    assert users == []
