"""The documentation stays in sync with the public API and builds strictly."""

from __future__ import annotations

import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

import jaxopt_lite

ROOT = pathlib.Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "docs" / "api.md"
_ENTRY = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)


def _api_entries() -> list[str]:
    return _ENTRY.findall(API_PAGE.read_text(encoding="utf-8"))


def test_every_public_name_has_an_api_entry():
    documented = {e.removeprefix("jaxopt_lite.") for e in _api_entries()}
    missing = sorted(set(jaxopt_lite.__all__) - documented)
    assert not missing, (
        f"public names missing from docs/api.md: {missing}; add a "
        "'::: jaxopt_lite.<name>' line under the right section"
    )


def test_api_page_names_only_public_names():
    entries = _api_entries()
    not_ours = [e for e in entries if not e.startswith("jaxopt_lite.")]
    assert not not_ours, f"docs/api.md entries outside jaxopt_lite: {not_ours}"
    names = [e.removeprefix("jaxopt_lite.") for e in entries]
    not_public = sorted(set(names) - set(jaxopt_lite.__all__))
    assert not not_public, (
        f"docs/api.md documents names that are not in jaxopt_lite.__all__: {not_public}"
    )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"docs/api.md documents these names twice: {duplicates}"


def test_public_names_exist():
    absent = [n for n in jaxopt_lite.__all__ if not hasattr(jaxopt_lite, n)]
    assert not absent, f"names in jaxopt_lite.__all__ that do not exist: {absent}"


def test_public_functions_and_classes_have_docstrings():
    undocumented = []
    for name in jaxopt_lite.__all__:
        obj = getattr(jaxopt_lite, name, None)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = obj.__doc__
            if not doc or not doc.strip():
                undocumented.append(name)
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_nav_pages_exist():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s*([\w/.-]+\.md)\s*$", text, re.MULTILINE)
    assert "index.md" in pages and "api.md" in pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, f"mkdocs.yml nav names missing pages: {missing}"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra (mkdocs-material, mkdocstrings) is not installed",
)
def test_strict_build_renders_math(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # Docstring math ($$ blocks, $ inline) reaches MathJax through arithmatex.
    assert '<div class="arithmatex">\\[' in api
    assert '<span class="arithmatex">\\(' in api
    assert "$$" not in api
    # Doctests render as code, and wrapped lines starting with ">" are not
    # turned into block quotes (docs/griffe_example_sections.py).
    assert "<blockquote>" not in api
    assert '<span class="gp">&gt;&gt;&gt; </span>' in api
    math = (site / "math" / "optimizers" / "index.html").read_text(encoding="utf-8")
    assert '<div class="arithmatex">\\[' in math
