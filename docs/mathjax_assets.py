"""MkDocs hook: serve MathJax from an installed Python package, not a CDN.

The ``django-static-mathjax`` distribution (in the ``docs`` extra; it has no
dependencies, Django is not needed) vendors MathJax 3's browser build. This
hook adds the files the site uses to the build, under ``assets/mathjax/``:
the ``tex-chtml.js`` component, the TeX extensions it loads on demand and the
CHTML web fonts. Nothing is committed to the repository and the built site
works offline. ``mkdocs.yml`` loads ``assets/mathjax/tex-chtml.js`` after
``javascripts/mathjax.js`` (the configuration).
"""

from __future__ import annotations

import pathlib
from importlib import metadata

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

DISTRIBUTION = "django-static-mathjax"
SOURCE = "mathjax/static/mathjax/es5"  # inside the distribution
TARGET = "assets/mathjax"  # inside the site
PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2")


def mathjax_root() -> pathlib.Path:
    """The installed MathJax ``es5`` folder."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise PluginError(
            f"{DISTRIBUTION} is not installed; it provides MathJax for the docs: "
            'pip install -e ".[docs]"'
        ) from None
    root = pathlib.Path(str(dist.locate_file(SOURCE)))
    if not (root / PARTS[0]).is_file():
        raise PluginError(f"{DISTRIBUTION} has no {SOURCE}/{PARTS[0]} at {root}.")
    return root


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    root = mathjax_root()
    for part in PARTS:
        path = root / part
        for source in [path] if path.is_file() else sorted(path.rglob("*")):
            if source.is_file():
                uri = f"{TARGET}/{source.relative_to(root).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files
