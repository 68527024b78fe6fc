"""Runnable examples for jaxopt_lite, shipped with the package.

Each example is a module with ``run(fast=False, out=None) -> dict`` (the key
numbers of the run; PNG plots go into the folder ``out`` when matplotlib is
installed) and a command line::

    python -m jaxopt_lite.examples.<name> [--fast] [--out DIR]

The examples use only the public API (``import jaxopt_lite as jol``). Some need
the ``examples`` extra (``pip install 'jaxopt-lite[examples]'``: matplotlib,
scikit-learn, tqdm); `flax_equinox` also uses flax and equinox when they are
installed. ``jaxopt-lite examples`` lists them and ``jaxopt-lite demo`` runs
the classic ones.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["available", "describe"]

# The order in which the examples are listed and read: from the simplest.
_ORDER = (
    "gd_parabola",
    "sgd_least_squares",
    "lr_decay",
    "digits_mlp",
    "text_classification",
    "recommender",
    "lr_sweep",
    "flax_equinox",
    "pruning",
)


def available() -> list[str]:
    """The names of the example modules in this package, simplest first."""
    found = {
        m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
    }
    known = [name for name in _ORDER if name in found]
    return known + sorted(found - set(known))


def describe(name: str) -> str:
    """The one-line summary of example ``name`` (the first line of its docstring)."""
    module = importlib.import_module(f"{__name__}.{name}")
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0].replace("`", "") if doc else ""
