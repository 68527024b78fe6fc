"""The docs follow the code: architecture.md's file map names every module of
the package (and nothing else), and every public function documents each of
its parameters under ``Args:``."""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest

import jaxopt_lite

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxopt_lite"
MAP = ROOT / "docs" / "architecture.md"


def _mapped() -> set[str]:
    """``folder/file.py`` for every file the map's table names."""
    found, folder = set(), None
    for line in MAP.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("|"):
            continue
        if cells[0].startswith("`_"):
            folder = cells[0].strip("`")
        for name in re.findall(r"`([a-z_0-9]+\.py)`", cells[1]):
            found.add(f"{folder}/{name}")
    return found


def _modules() -> set[str]:
    return {
        f"{p.parent.name}/{p.name}"
        for p in PACKAGE.glob("_*/*.py")
        if p.name != "__init__.py"
    }


def test_the_file_map_names_every_module_and_only_those():
    mapped, modules = _mapped(), _modules()
    assert sorted(modules - mapped) == [], "modules missing from the file map"
    assert sorted(mapped - modules) == [], "the file map names missing modules"


def _functions() -> list[str]:
    return [
        name
        for name in jaxopt_lite.__all__
        if inspect.isfunction(getattr(jaxopt_lite, name, None))
    ]


def _documented(doc: str) -> set[str]:
    """The names listed under ``Args:`` (``name:`` at the section's indent)."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    except StopIteration:
        return set()
    names, indent = set(), None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        match = re.match(r"\s*\**(\w+)(?: \(.*\))?:", line)
        if depth == indent and match:
            names.add(match.group(1))
    return names


@pytest.mark.parametrize("name", _functions())
def test_every_parameter_is_documented(name):
    function = getattr(jaxopt_lite, name)
    parameters = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = set(parameters) - _documented(inspect.getdoc(function) or "")
    assert not missing, f"jaxopt_lite.{name}: {sorted(missing)} not under Args:"
