"""The documentation stays in sync with the public API, builds strictly and
self-contained, and its code runs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import docs_code
import numpy as np
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


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


DOCS_EXTRA = all(
    _installed(d)
    for d in ("mkdocs", "mkdocs-material", "mkdocstrings", "django-static-mathjax")
)


@pytest.fixture(scope="module")
def docs_code_run():
    """The code blocks of every page, run by tests/docs_code.py in a subprocess
    (8 simulated devices). Started when first requested and read when a test
    needs its report, so it overlaps with the site build below."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "docs_code.py")],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    report: dict = {}

    def result() -> dict:
        if not report:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            report.update(json.loads(out))
        return report

    yield result
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def site(tmp_path_factory, docs_code_run):
    """The site built with ``mkdocs build --strict`` (skipped without the docs
    extra)."""
    del docs_code_run  # requested only to start it first, so the two overlap
    if not DOCS_EXTRA:
        pytest.skip("the docs extra (mkdocs-material, mkdocstrings, ...) is missing")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    site = tmp_path_factory.mktemp("docs") / "site"
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
    return site


def test_strict_build_renders_math(site):
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


_EXTERNAL = re.compile(r"""^(?:[a-z][a-z0-9+.-]*:|//)""", re.IGNORECASE)
_TAG = re.compile(r"<(script|link)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""\b(src|href|rel)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def test_built_site_loads_nothing_from_the_network(site):
    external = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        for tag, attrs in _TAG.findall(html):
            found = {k.lower(): v for k, v in _ATTR.findall(attrs)}
            url = found.get("src" if tag.lower() == "script" else "href", "")
            loads = tag.lower() == "script" or found.get("rel", "").lower() in (
                "stylesheet",
                "preconnect",
                "preload",
                "modulepreload",
                "icon",
            )
            if loads and _EXTERNAL.match(url):
                external.append(f"{page.relative_to(site)}: <{tag} {url}>")
        if "fonts.googleapis.com" in html or "fonts.gstatic.com" in html:
            external.append(f"{page.relative_to(site)}: Google Fonts")
    assert not external, "the site must work offline:\n" + "\n".join(external)


def test_math_renderer_is_served_by_the_site(site):
    page = site / "math" / "optimizers" / "index.html"
    scripts = re.findall(r'<script src="([^"]+)"', page.read_text(encoding="utf-8"))
    mathjax = [s for s in scripts if s.endswith("mathjax/tex-chtml.js")]
    assert mathjax == ["../../assets/mathjax/tex-chtml.js"], scripts
    assert "../../javascripts/mathjax.js" in scripts  # the configuration, first
    assert scripts.index("../../javascripts/mathjax.js") < scripts.index(mathjax[0])
    root = site / "assets" / "mathjax"
    # MathJax 3's CHTML output at its own path, plus what it loads from there.
    assert b"MathJax" in (root / "tex-chtml.js").read_bytes()
    fonts = {p.name for p in (root / "output/chtml/fonts/woff-v2").glob("*.woff")}
    assert {"MathJax_Main-Regular.woff", "MathJax_Math-Italic.woff"} <= fonts
    assert (root / "input/tex/extensions/ams.js").is_file()


def test_code_block_rule():
    text = """```python
a = 1
```

<!-- docs: not run -->
```python
b = undefined
```

```text
c
```

- item

    ```python
    d = a + 1
    ```

```
e
```
"""
    found = docs_code.blocks(text)
    assert [(b.line, b.language, b.runs) for b in found] == [
        (1, "python", True),
        (6, "python", False),
        (10, "text", False),
        (16, "python", True),
        (20, "", False),
    ]
    assert found[3].code == "d = a + 1\n"


def test_every_page_is_covered():
    names = {p.relative_to(ROOT).as_posix() for p in docs_code.pages()}
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk | {"README.md"} == names
    runnable = [
        p.relative_to(ROOT).as_posix()
        for p in docs_code.pages()
        if any(b.runs for b in docs_code.blocks(p.read_text(encoding="utf-8")))
    ]
    # Spot checks that the rule still finds the pages with code.
    assert {"README.md", "docs/sweeps.md", "docs/multi-device.md"} <= set(runnable)


@pytest.mark.parametrize(
    "page", [p.relative_to(ROOT).as_posix() for p in docs_code.pages()]
)
def test_page_code_runs_in_order(page, docs_code_run):
    outcome = docs_code_run()[page]
    assert outcome["ok"], f"{page}: a code block failed\n{outcome['error']}"


# The pages' code runs once, in the docs_code_run subprocess; these read what
# it computed (moved from tests/test_full_batch_docs.py, which ran the pages
# a second time).


def test_full_batch_page_shows_what_its_text_says(docs_code_run):
    """docs/full-batch.md: L-BFGS converges, the vmapped solves keep their
    batch shapes, and the upper bound 0.7 is active."""
    outcome = docs_code_run()["docs/full-batch.md"]
    assert outcome["ok"], outcome["error"]
    facts = outcome["facts"]
    assert facts["str(result.status)"] == "converged"
    assert facts["list(batch.steps.shape)"] == [8]
    assert facts["list(solve(targets).shape)"] == [3, 3]
    assert facts["float(box.params.max())"] == np.float32(0.7)
    assert "converged" in outcome["output"]


def test_migration_sections_give_the_same_solutions(docs_code_run):
    """docs/migration.md, the sections for jaxopt.LBFGS, scipy.optimize.minimize
    and optimistix: each converges, and L-BFGS matches scipy's solution."""
    outcome = docs_code_run()["docs/migration.md"]
    assert outcome["ok"], outcome["error"]
    facts = outcome["facts"]
    assert facts["str(result.status)"] == facts["str(result_gd.status)"]
    assert facts["str(result.status)"] == "converged"
    assert facts["str(sol.status)"] == "converged"
    assert facts["float(abs(ref.x - ours.params).max())"] < 1e-4
