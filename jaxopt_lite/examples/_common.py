"""Small helpers shared by the examples: timing, plotting, argument parsing.

Plots use matplotlib's object-oriented API (`matplotlib.figure.Figure`), which
needs no GUI backend and leaves the global pyplot state alone, so running an
example from a notebook or a script behaves the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

PLOT_HINT = "install matplotlib to get plots: pip install 'jaxopt-lite[examples]'"


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def new_figure(ncols: int = 1, width: float = 4.8, height: float = 3.4) -> tuple:
    """A figure with ``ncols`` axes side by side (``axes`` is always a list)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def save_figure(
    fig: Any, out: str | os.PathLike | None, name: str, dpi: int = 90
) -> str:
    """Write ``fig`` to ``out/name`` (creating ``out``) and return the path."""
    if out is None:
        raise ValueError("save_figure needs a folder; out is None.")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(os.fspath(out), name)
    fig.savefig(path, dpi=dpi)
    return path


def maybe_plot(
    out: str | os.PathLike | None, draw: Callable[[], list[str]]
) -> list[str]:
    """Call ``draw()`` (which returns the paths it wrote) when ``out`` is given and
    matplotlib is installed; otherwise write nothing and return ``[]``."""
    if out is None or not have_matplotlib():
        return []
    return draw()


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` holds the wall time in seconds."""
    record = {"s": 0.0}
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["s"] = time.perf_counter() - start


def parse_args(
    description: str | None, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The ``--fast``/``--out`` command line every example accepts."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--fast", action="store_true", help="a smaller, quicker run (seconds)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write PNG plots into DIR (needs matplotlib)",
    )
    return parser.parse_args(argv)


def report_plots(out: str | os.PathLike | None, plots: Sequence[str]) -> None:
    """Print where plots went, or why there are none."""
    if plots:
        for path in plots:
            print(f"  wrote {path}")
    elif out is not None and not have_matplotlib():
        print(f"  plots skipped: {PLOT_HINT}")
    elif out is not None:
        print("  (no plots)")
    else:
        print("  (pass --out DIR to save plots)")


def summary(doc: str | None) -> str:
    """The first line of a module docstring."""
    return (doc or "").strip().splitlines()[0] if doc else ""
