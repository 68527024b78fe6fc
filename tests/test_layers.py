"""The package's folders are its layers, and imports only point down.

Read from the source with ``ast`` (imports inside functions included):

    _core        tree math, dtypes, argument checks          (layer 0)
    _schedules   step -> value functions                     (layer 1)
    _combinators transforms built from other transforms      (layer 1)
    _transforms  primitive gradient transformations          (layer 1)
    _optimizers  optimizers chained from primitives          (layer 1)
    _loop        pure, jittable loop core                    (layer 2)
    _host        the drivers' shared host services           (layer 3)
    _fit _sweep _minimize   the entry points                 (layer 3, on _host)
    the public API, the CLI, examples and benchmarks         (on top)

Inside layer 1 the order above is the direction too (a primitive may wrap
itself in `masked`; an optimizer chains primitives). The three entry points
share the host services and never import each other. Examples, benchmarks
and the CLI use only the public ``jaxopt_lite`` namespace.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "jaxopt_lite"
RANKS = {
    "_core": 0,
    "_schedules": 1,
    "_combinators": 2,
    "_transforms": 3,
    "_optimizers": 4,
    "_loop": 5,
    "_host": 6,
    "_fit": 7,
    "_sweep": 7,
    "_minimize": 7,
}
ON_TOP = len(RANKS)
PUBLIC_ONLY = ("examples", "benchmarks", "_cli.py", "__main__.py")
# public modules beside __init__.py that re-export names of the layers
PUBLIC_MODULES = {"contrib.py", "loop.py"}


def _folder(module: str) -> str | None:
    """The layer folder of a dotted ``jaxopt_lite`` module name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else None


def _imports(path: pathlib.Path) -> list[str]:
    """Every ``jaxopt_lite`` module the file imports (``from jaxopt_lite import
    _x`` counts as importing ``jaxopt_lite._x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("jaxopt_lite")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: use absolute imports")
            if node.module == "jaxopt_lite":
                found += [f"jaxopt_lite.{a.name}" for a in node.names]
            elif node.module.startswith("jaxopt_lite."):
                found.append(node.module)
    return found


def _violations(relative: pathlib.PurePath, modules: list[str]) -> list[str]:
    """The imports of the file at ``relative`` (to the package) that break the
    layering."""
    folder = relative.parts[0] if len(relative.parts) > 1 else None
    rank = RANKS.get(folder or "", ON_TOP)
    bad = []
    for module in modules:
        target = _folder(module)
        if relative.parts[0] in PUBLIC_ONLY:
            if module != "jaxopt_lite" and not module.startswith(
                ("jaxopt_lite.examples", "jaxopt_lite.benchmarks", "jaxopt_lite._cli")
            ):
                bad.append(f"{relative} imports {module}: use the public API")
        elif target is None:
            if rank != ON_TOP and module != "jaxopt_lite._cli":
                bad.append(f"{relative} (in {folder}) imports {module}")
        elif RANKS[target] > rank:
            bad.append(f"{relative} ({folder}) imports the higher layer {module}")
        elif RANKS[target] == rank == RANKS["_fit"] and target != folder:
            bad.append(f"{relative} ({folder}) imports another entry point {module}")
    return bad


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: pathlib.Path):
    assert _violations(path.relative_to(PACKAGE), _imports(path)) == []


def test_the_package_is_made_of_the_layer_folders():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name[0] == "_"}
    assert folders - {"__pycache__"} == set(RANKS)
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "_cli.py", *PUBLIC_MODULES}


def test_the_checker_finds_upward_imports(tmp_path: pathlib.Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from jaxopt_lite._core import tree\n"
        "from jaxopt_lite._fit import fit\n"
        "def f():\n    import jaxopt_lite._loop.train\n"
    )
    modules = _imports(bad)
    assert modules == [
        "jaxopt_lite._core",
        "jaxopt_lite._fit",
        "jaxopt_lite._loop.train",
    ]
    found = _violations(pathlib.PurePath("_transforms/bad.py"), modules)
    assert len(found) == 2 and "_fit" in found[0] and "_loop" in found[1]
    assert _violations(pathlib.PurePath("_fit/bad.py"), modules) == []
    assert len(_violations(pathlib.PurePath("_sweep/bad.py"), modules)) == 1
    assert _violations(pathlib.PurePath("examples/bad.py"), ["jaxopt_lite"]) == []
    assert len(_violations(pathlib.PurePath("examples/bad.py"), modules)) == 3


def _renamed(path: pathlib.Path) -> list[str]:
    """The package's own names imported under another name (``from
    jaxopt_lite._core import validate as v``); ``x as x`` re-exports are fine."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "jaxopt_lite"
        ):
            found += [
                f"{node.module}.{a.name} as {a.asname}"
                for a in node.names
                if a.asname not in (None, a.name)
            ]
    return found


def test_modules_are_imported_under_their_own_names(tmp_path: pathlib.Path):
    renamed = {
        str(p.relative_to(PACKAGE)): _renamed(p)
        for p in sorted(PACKAGE.rglob("*.py"))
        if _renamed(p)
    }
    assert renamed == {}
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from jaxopt_lite._core import validate as v\n"
        "from jaxopt_lite import sweep as sweep\n"
    )
    assert _renamed(bad) == ["jaxopt_lite._core.validate as v"]
