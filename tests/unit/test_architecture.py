"""The layout's rules, read from the code's own imports (ast, nothing is imported or run):
no import cycles, lazy, relative and ``importlib.import_module`` imports included; each folder
imports only the folders and modules its layer may (``MAY_IMPORT``); only firehose/ talks to
Firehose (its client, botocore's signer); only telemetry/ imports prometheus_client; nothing
outside cli/ imports the command line; a short list of modules directly in producer/.
README.md, Development, explains them. Each rule is also run on a planted offender (the
negative controls at the end), so a rule that stopped seeing imports would fail."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "producer"
MAX_TOP_LEVEL_MODULES = 16
# A class longer than this does more than one thing (the channel was 576 lines once); split it.
MAX_CLASS_LINES = 300


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str | None = None) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth: ``import``, ``from``
    (relative ones resolved against the module ``name``, by default the file's own), and
    ``importlib.import_module("...")`` with a literal name. ``from a import b`` names module
    ``a.b`` when that is a module of ours, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = _modules()
    name = name or _module_name(path)
    # The package a relative import starts from: the module's own package (itself for __init__).
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join([*up, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in modules or not base else base), node.lineno
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value, node.lineno


def _is_import_module(func: ast.expr) -> bool:
    """``importlib.import_module`` or a bare ``import_module`` (from importlib import ...)."""
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id == "import_module"


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


def _offenders(allowed: str, forbidden: tuple[str, ...], modules: dict[str, Path] | None = None) -> list[str]:
    """Imports of anything under ``forbidden`` from modules outside the ``allowed`` package."""
    out = []
    for name, path in (modules or _modules()).items():
        if name == allowed or name.startswith(allowed + "."):
            continue
        for target, line in _imports(path, name):
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                out.append(f"{name}:{line} imports {target}")
    return out


# Which parts of producer/ each part may import: a folder by its name, a module directly in
# producer/ by its own. Read bottom up: errors/durations/shipped/sharding/schedule/pipeline/
# runtime import nothing of ours; firehose/, aws/, telemetry/, events/ speak to one thing each;
# delivery/ sends (through firehose/, counting in telemetry/); local/, audit/, bench/, profile/
# stand on those, and streams/ decides which streams a run uses, configured how; config,
# generation, app (the composition root) and replay assemble a run; control/ steers one while
# it goes; workers/ runs several; cli/ may import anything, and nothing imports it (test
# below). A new folder must be placed here, and an edge not listed is an import pointing the
# wrong way.
_BASE = {"errors", "durations", "shipped"}
MAY_IMPORT: dict[str, set[str]] = {
    "__main__": {"cli"},
    "__init__": set(),
    "errors": set(),
    "durations": set(),
    "shipped": set(),
    "sharding": set(),
    "schedule": set(),
    "runtime": set(),
    "pipeline": set(),
    "firehose": {"errors"},
    "aws": {"errors", "shipped"},
    # The schedule check integrates the (steered) schedule as the pacer does (schedule.integrate).
    "telemetry": {"errors", "schedule"},
    "events": set(),
    # templates/: users' own generators, compiled (events.base's protocols and trace contract).
    "templates": _BASE | {"events", "firehose"},
    "encoding": {"events", "firehose"},
    "summary": {"errors", "telemetry", "checks"},
    "delivery": {"firehose", "telemetry"},
    "profile": _BASE | {"encoding", "schedule", "events", "checks", "templates"},
    "local": {"errors", "shipped", "pipeline", "aws", "firehose"},
    "streams": {"errors", "shipped", "pipeline", "firehose", "aws", "local"},
    # checks/ judges figures (pure); results/ stores and sums a run's shards.
    "checks": {"errors", "durations", "telemetry"},
    "results": {"errors", "aws", "checks", "summary", "telemetry"},
    "config": {"sharding", "delivery", "profile", "checks", "results"},
    "console": {"config", "durations", "summary", "telemetry"},
    "generation": {"config", "encoding", "schedule", "delivery", "events", "firehose", "templates"},
    "audit": _BASE
    | {"pipeline", "summary", "aws", "delivery", "firehose", "local", "streams", "telemetry"}
    | {"events"},
    "bench": {"errors", "encoding", "pipeline", "events", "firehose", "local", "profile", "telemetry"}
    | {"templates"},
    # control/ steers a running run: its schedule, its early end (runtime), its figures.
    "control": _BASE | {"aws", "runtime", "schedule", "telemetry"},
    "app": {"errors", "config", "console", "generation", "pipeline", "runtime", "schedule"}
    | {
        "summary",
        "delivery",
        "events",
        "firehose",
        "local",
        "streams",
        "telemetry",
        "checks",
        "results",
        "control",
    },
    "replay": {"app", "config", "errors", "runtime", "summary", "delivery", "firehose", "telemetry"},
    "workers": {"app", "config", "console", "errors", "pipeline", "sharding", "summary"}
    | {"local", "streams", "telemetry", "results", "control", "schedule"},
}


def _part(module: str) -> str:
    """The part of producer/ a module belongs to: its folder, or itself when directly in it."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _layer_breaches(graph: dict[str, set[str]], may_import: dict[str, set[str]]) -> list[str]:
    """Imports between parts that ``may_import`` does not list (cli/ may import anything)."""
    out = []
    for module, targets in sorted(graph.items()):
        part = _part(module)
        if part == "cli":
            continue
        for target in sorted(targets):
            other = _part(target)
            if other != part and other not in may_import.get(part, set()):
                out.append(f"{module} imports {target} ({part} may not import {other})")
    return out


def _firehose_clients(modules: dict[str, Path]) -> list[str]:
    """Calls that make a Firehose client (``create_client("firehose", ...)``, ``client(...)``,
    over any number of lines) in modules outside firehose/."""
    out = []
    for name, path in modules.items():
        if name.startswith("producer.firehose"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            service = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "service_name")]
            if called in ("client", "create_client") and any(
                isinstance(a, ast.Constant) and a.value == "firehose" for a in service
            ):
                out.append(f"{name}:{node.lineno}")
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
    assert [o for o in offenders if not o.startswith("producer.aws.")] == []
    assert _firehose_clients(_modules()) == []


def test_each_part_imports_only_what_its_layer_may() -> None:
    assert set(MAY_IMPORT) | {"cli"} == {_part(m) for m in _modules()}, "a part missing from MAY_IMPORT"
    assert _cycles({part: targets - {part} for part, targets in MAY_IMPORT.items()} | {"cli": set()}) == []
    assert _layer_breaches(_graph(), MAY_IMPORT) == []


def test_only_firehose_and_aws_import_the_aws_sdk() -> None:
    # Every other folder reaches AWS through firehose/ (Firehose) or aws/ (CloudFormation, S3,
    # CloudWatch, SigV4); bench/reference.py is the stock-client producer the benchmark compares
    # against, so it uses aiobotocore as a hand-written producer would.
    sdk = ("botocore", "aiobotocore", "boto3")
    offenders = _offenders("producer.firehose", sdk)
    allowed = ("producer.aws.", "producer.bench.reference:")
    assert [o for o in offenders if not o.startswith(allowed)] == []


def test_only_telemetry_imports_prometheus_client() -> None:
    assert _offenders("producer.telemetry", ("prometheus_client",)) == []


@pytest.mark.parametrize("package", ["producer.cli"])
def test_nothing_outside_the_command_line_imports_it(package: str) -> None:
    outside = [o for o in _offenders(package, (package,)) if not o.startswith("producer.__main__:")]
    assert outside == []


def test_producer_keeps_few_top_level_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def _long_classes(modules: dict[str, Path]) -> list[str]:
    out = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    out.append(f"{name}.{node.name}: {lines} lines")
    return out


def test_no_class_is_too_long() -> None:
    assert _long_classes(_modules()) == []


def test_no_dunder_import() -> None:
    users = [
        str(p.relative_to(ROOT))
        for p in _modules().values()
        if "__import__(" in p.read_text(encoding="utf-8")
    ]
    assert users == []


# Negative controls: each rule run on planted offenders, in a package laid out like ours.

PLANTED = {
    "producer/delivery/planted.py": (
        "from ..cli import main\n"  # relative, two levels: producer.cli.main
        "from . import channel\n"  # relative, same package: producer.delivery.channel
        "import importlib\n"
        "def late():\n"
        "    return importlib.import_module('producer.app')\n"
        "def client(session):\n"
        "    return session.create_client(\n"
        "        'firehose',\n"
        "        region_name='us-east-1',\n"
        "    )\n"
    ),
    "producer/telemetry/__init__.py": "from .planted_metrics import x\n",
}


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, Path]:
    """The planted modules, by the names they would have in producer/."""
    out = {}
    for relative, text in PLANTED.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        name = ".".join(Path(relative).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def test_relative_and_importlib_imports_are_seen(planted: dict[str, Path]) -> None:
    name = "producer.delivery.planted"
    seen = {target for target, _ in _imports(planted[name], name)}
    assert {"producer.cli.main", "producer.delivery.channel", "producer.app"} <= seen
    init = {target for target, _ in _imports(planted["producer.telemetry"], "producer.telemetry")}
    assert init == {"producer.telemetry.planted_metrics"}


def test_the_rules_catch_planted_offenders(planted: dict[str, Path]) -> None:
    assert _offenders("producer.cli", ("producer.cli",), planted) == [
        "producer.delivery.planted:1 imports producer.cli.main"
    ]
    assert _firehose_clients(planted) == ["producer.delivery.planted:7"]
    graph = {"producer.delivery.planted": {"producer.app", "producer.firehose.client", "producer.telemetry"}}
    assert _layer_breaches(graph, MAY_IMPORT) == [
        "producer.delivery.planted imports producer.app (delivery may not import app)"
    ]
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]


def test_a_long_class_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "long.py"
    path.write_text("class Long:\n" + "    x = 1\n" * MAX_CLASS_LINES, encoding="utf-8")
    assert _long_classes({"producer.long": path}) == [f"producer.long.Long: {MAX_CLASS_LINES + 1} lines"]
