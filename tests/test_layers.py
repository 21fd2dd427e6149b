"""The package's layers (docs/architecture.md): imports run one way, without cycles.

base (layout, config, features, metrics, hostmem, compile_cache) -> core (data, model, train, runs, extract,
prepare, synth, ...) -> analysis -> pipelines -> command line (cli, cli_args, every `commands`).
Read from the source with `ast`, so the test sees imports inside functions too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "slt_jax"
BASE = {"layout", "config", "features", "metrics", "hostmem", "compile_cache"}
LAYERS = ("base", "core", "analysis", "pipelines", "command line")
# Imports a library module may defer to a function: heavy, and needed by few of its callers.
DEFERRABLE = {"mediapipe", "cv2", "matplotlib", "tensorflow", "tensorflow_datasets", "pose_format",
              "sign_language_datasets", "torch"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]  # the package's own lazy exports name no module
    if parts[-1] == "commands" or parts[0] in ("cli", "cli_args"):
        return LAYERS.index("command line")
    if parts[0] in ("pipelines", "analysis"):
        return LAYERS.index(parts[0])
    return LAYERS.index("base" if parts[0] in BASE | {"__init__"} else "core")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import in the file; `from a import b` names
    a.b when that is a module of the package."""
    tree = ast.parse(path.read_text())
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        found += [(name, id(node) in nested) for name in names]
    return found


def internal(name: str) -> str | None:
    """The package module an import names (the longest known prefix), or None if external."""
    parts = name.split(".")
    for k in range(len(parts), 1, -1):
        if ".".join(parts[:k]) in MODULES:
            return ".".join(parts[:k])
    return None


GRAPH = {m: {t for name, _ in imports(p) if (t := internal(name)) and t != m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module):
    upward = [t for t in GRAPH[module] if layer(t) > layer(module)]
    assert not upward, (f"{module} ({LAYERS[layer(module)]}) imports from a layer above it: "
                        + ", ".join(f"{t} ({LAYERS[layer(t)]})" for t in upward))


def test_no_import_cycles():
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m not in done:
            path.append(m)
            for t in sorted(GRAPH[m]):
                visit(t)
            path.pop()
            done.add(m)

    for m in sorted(GRAPH):
        visit(m)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) < LAYERS.index("command line")))
def test_library_modules_defer_only_heavy_imports(module):
    """Command-line modules defer imports so that `slt-jax --help` stays instant; a library module
    defers only a heavy dependency few of its callers need."""
    deferred = [name for name, nested in imports(MODULES[module]) if nested]
    assert all(name.split(".")[0] in DEFERRABLE for name in deferred), f"{module} imports inside a function: {deferred}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small_and_parse_arguments_only_on_the_command_line(module):
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES})"
    if layer(module) < LAYERS.index("command line"):
        assert "argparse" not in {name for name, _ in imports(MODULES[module])}, f"{module} builds a parser"


def test_the_layer_map_reads_the_package_as_documented():
    assert layer("slt_jax.config") == 0 and layer("slt_jax.model") == layer("slt_jax.prepare.table") == 1
    assert layer("slt_jax.analysis.record") == 2 and layer("slt_jax.pipelines.reproduce") == 3
    assert layer("slt_jax.analysis.commands") == layer("slt_jax.cli") == 4
    assert internal("slt_jax.analysis.alignment.centroids") == "slt_jax.analysis.alignment"
    assert internal("numpy") is None
