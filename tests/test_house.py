"""The house rules, checked: imports flow one way, from the ground floor up; ruff (lint and
format) and mypy pass on the whole tree."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rnnkit"

# Each top-level module or package of rnnkit and its floor: a module may import from its
# own floor and the floors below, never from above.  The model floor holds what a model
# does with itself (train, save, load, exchange); the accelerator sits above the reference
# loops it accelerates, so bptt cannot know it.
FLOORS = [
    {
        "_version",
        "backend",
        "activations",
        "initializers",
        "validation",
        "seeding",
        "atomicfile",
        "progress",
        "plotting",
        "summary",
        "argtypes",
    },
    {"cells"},
    {"bptt"},
    {"kernels", "gpu"},
    {"layers"},
    {"losses", "metrics", "optim", "callbacks"},
    {"models", "seq2seq", "seq2seq_attention", "training", "distributed", "gradcheck", "io"},
    {"data", "datasets", "diagnostics"},
    {"apps"},
    {"cli", "__main__", ""},  # "": rnnkit/__init__.py, the public API
]
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, parts


def _top(dotted):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path, parts):
    """(line, imported rnnkit module) of every import, also inside functions, except those
    under ``if TYPE_CHECKING:`` (annotations only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = parts if path.name == "__init__.py" else parts[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            yield from ((node.lineno, n) for n in names if n.startswith("rnnkit"))
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("rnnkit"))


def test_every_module_has_a_floor():
    missing = sorted({_top(".".join(parts)) for _, parts in _modules()} - set(FLOOR))
    assert not missing, f"add these to FLOORS in {Path(__file__).name}: {missing}"


def test_no_module_imports_from_a_floor_above_it():
    wrong = []
    for path, parts in _modules():
        mine = _top(".".join(parts))
        for line, target in _imports(path, parts):
            theirs = _top(target)
            if theirs in FLOOR and mine in FLOOR and FLOOR[theirs] > FLOOR[mine]:
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line} ({mine}, floor {FLOOR[mine]}) "
                    f"imports {target} (floor {FLOOR[theirs]})"
                )
    assert not wrong, "\n".join(wrong)


def test_the_reference_loop_knows_no_accelerator():
    source = (PACKAGE / "bptt.py").read_text(encoding="utf-8")
    assert "kernels" not in source.split('"""', 2)[2]  # past the module docstring


def _run(*command):
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        pytest.fail(f"{command[0]} is not installed: pip install -e '.[test]'")
    r = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]


def test_ruff_lint():
    _run("ruff", "check", ".")


def test_ruff_format():
    _run("ruff", "format", "--check", ".")


def test_mypy():
    _run(sys.executable, "-m", "mypy")


def test_the_compiled_loops_were_built_where_they_can_be():
    """The extension is optional (setup.py: optional=True), so a C error in it would only
    show as a warning in the install's log and every compiled-loop test would skip.  Where
    a C compiler is on the PATH and RNNKIT_NO_EXTENSION is not set, it must be there."""
    import os

    from rnnkit import kernels

    if os.environ.get("RNNKIT_NO_EXTENSION"):
        pytest.skip("RNNKIT_NO_EXTENSION is set")
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on the PATH")
    assert kernels.available(), (
        "rnnkit.kernels._loops is not built although a C compiler is here: reinstall with "
        "`pip install -v -e .` and read the compiler's error"
    )
