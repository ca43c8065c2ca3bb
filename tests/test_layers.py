"""The import graph runs one way: a module imports only modules of its own layer or lower ones,
including imports inside functions (read with `ast`, nothing is imported). docs/architecture.md
describes the layers; each allowed exception below says why it exists and what would remove it."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnkit"

# lowest first; a module's layer is that of its longest matching prefix (dotted, below cnnkit)
LAYERS = [
    [
        "errors",
        "config",
        "device",
        "ranges",
        "_text",
        "io_safety",
        "rundir",
        "_argparse",
        "_lazy",
        "_pipes",
        "safe_pickle",
        "output_dir",
        "background",
        "__version__",
    ],  # __version__: `from cnnkit import __version__` (the package root only defines it)
    ["data", "models"],
    ["checkpoint", "checkpoint_check", "inference"],
    ["evaluate", "explain", "annotate"],  # logits of a split, metrics, plots, heat maps
    ["report"],  # report.md, report.html (other areas' sections: named in report.html.EXTRA_SECTIONS, not imported)
    ["training", "tasks"],  # the engine: a run ends by scoring the test split and writing both reports
    ["robust", "search"],  # search: studies of training runs
    ["deploy"],
    ["serve"],
    ["cli", "__main__", "__init__", "*.commands", "*.flags"],  # each area's verbs (commands.py) and their flags
]
CLI_MODULES = ("commands", "flags")  # an area's commands.py / flags.py are in the CLI layer, whatever the area

ALLOWED: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[-1] in CLI_MODULES:
        return len(LAYERS) - 1
    for n in range(len(parts), 0, -1):
        for i, names in enumerate(LAYERS):
            if ".".join(parts[:n]) in names:
                return i
    raise AssertionError(f"cnnkit.{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, module: str | None = None) -> set[str]:
    """cnnkit modules imported anywhere in the file (top level and inside functions), without the `cnnkit.` prefix."""
    out = set()
    pkg = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        pkg = pkg[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name[len("cnnkit.") :] for a in node.names if a.name.startswith("cnnkit.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("cnnkit."):
                base = node.module[len("cnnkit.") :]
            elif node.module == "cnnkit":
                base = ""
            else:
                continue
            for a in node.names:
                out.add(f"{base}.{a.name}" if base else a.name)
    return {m for m in out if m}


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        for target in imports(path):
            if layer_of(target) > layer_of(me):
                found.add((me, target.split(".")[0] if layer_of(target.split(".")[0]) == layer_of(target) else target))
    return found


def test_no_lower_layer_imports_a_higher_one():
    found = upward_imports()
    new = sorted(found - set(ALLOWED))
    assert not new, "upward imports (a lower layer importing a higher one):\n" + "\n".join(
        f"  cnnkit.{a} -> cnnkit.{b}" for a, b in new
    )


def test_no_two_packages_import_each_other():
    """Within a layer too, two areas do not import each other, counting their commands.py and flags.py:
    an area that builds on a lower one adds to that area's verbs from above (`extend(parsers)`, cli.py)
    instead of the lower verb importing it."""
    edges = set()
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        edges |= {(me.split(".")[0], t.split(".")[0]) for t in imports(path) if t.split(".")[0] != me.split(".")[0]}
    both = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert not both, "packages importing each other: " + ", ".join(f"{a} <-> {b}" for a, b in both)


def test_every_allowed_exception_still_exists():
    gone = sorted(set(ALLOWED) - upward_imports())
    assert all(len(why) > 40 for why in ALLOWED.values())  # each exception says why and what would remove it
    assert not gone, f"these exceptions are fixed: remove them from ALLOWED: {gone}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        "def f():\n    from cnnkit.training.trainer import train\n    import cnnkit.report\n    from ..models import zoo\n"
    )
    assert imports(f, "data.x") == {"training.trainer.train", "report", "models.zoo"}
    assert (
        layer_of("training.trainer.train") > layer_of("data.folder") and layer_of("explain.commands") == len(LAYERS) - 1
    )
