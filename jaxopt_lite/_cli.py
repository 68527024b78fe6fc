"""The ``jaxopt-lite`` command: ``demo``, ``examples`` and ``bench``.

Also reachable as ``python -m jaxopt_lite``. It sits on top of the library and
uses only the public API, through the example modules in
`jaxopt_lite.examples`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Sequence

import jaxopt_lite

DEFAULT_DEMO_DIR = "jaxopt-lite-demo"
EXTRA_HINT = "pip install 'jaxopt-lite[examples]'"

# (example module, what the demo row group is called, import names it needs)
DEMOS = (
    ("gd_parabola", "gradient descent", ()),
    ("sgd_least_squares", "stochastic gradient descent", ()),
    ("lr_decay", "learning-rate decay", ()),
    ("digits_mlp", "digits classifier", ("sklearn",)),
)

DESCRIPTION = (
    "jaxopt_lite: optax-compatible first-order optimizers and compiled loops for JAX."
)
EPILOG = """\
Run 'jaxopt-lite <command> --help' for the options of a command. Start with:
  jaxopt-lite demo --fast
"""


def _say(text: str = "", *, file=None) -> None:
    """Print, replacing characters the terminal's encoding cannot show."""
    stream = file or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    print(text.encode(encoding, "replace").decode(encoding), file=stream, flush=True)


def _missing(modules: Sequence[str]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxopt-lite`` command."""
    parser = argparse.ArgumentParser(
        prog="jaxopt-lite",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"jaxopt-lite {jaxopt_lite.__version__}"
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )

    demo = commands.add_parser(
        "demo",
        help="run four classic demos (gradient descent on a parabola, SGD on least "
        "squares, learning-rate decay, an MLP on the digits), print a table of "
        "results and save loss-curve plots",
        description=(
            "Run four small demos (gradient descent on f(x) = x^2; SGD on least "
            "squares against numpy.linalg.lstsq; constant vs decaying learning "
            "rates; an MLP on scikit-learn's digits with early stopping), print "
            "one line per demo as it finishes, then a table (method, steps, final "
            "loss, accuracy, time), and write PNG plots when matplotlib is "
            f"installed ({EXTRA_HINT}). Times include JAX compilation."
        ),
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_DEMO_DIR,
        help=f"folder for the PNG plots (default: ./{DEFAULT_DEMO_DIR}/)",
    )
    demo.add_argument(
        "--fast", action="store_true", help="smaller problems, for a quick look"
    )

    commands.add_parser(
        "examples",
        help="list the runnable examples shipped with the package and how to run "
        "them (python -m jaxopt_lite.examples.<name>)",
        description="List the examples shipped in jaxopt_lite.examples.",
    )

    bench = commands.add_parser(
        "bench",
        help="run the benchmark suite (jaxopt_lite.benchmarks)",
        description=(
            "Run the benchmark suite in jaxopt_lite.benchmarks (jaxopt_lite against "
            "optax loops, as ratios measured side by side). Options not listed "
            "here (--quick, --smoke, --only, --repeats) are passed on to the "
            "suite: see 'python -m jaxopt_lite.benchmarks --help'."
        ),
    )
    bench.add_argument(
        "--full", action="store_true", help="the full suite (default: the quick one)"
    )
    bench.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="write the JSON results to FILE (default: a time-stamped file)",
    )
    return parser


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(rows: Sequence[dict]) -> str:
    """The demo table: one line per row dict (``demo``, ``method``, ``steps``, ...)."""
    header = ("demo", "method", "steps", "final loss", "accuracy", "time (s)")
    cells = [
        (
            row["demo"],
            row["method"],
            _cell(row["steps"], "d"),
            _cell(row["final_loss"], ".4g"),
            _cell(row["accuracy"], ".2%"),
            _cell(row["time_s"], ".2f"),
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        left = [v.ljust(w) for v, w in zip(values[:2], widths[:2], strict=True)]
        right = [v.rjust(w) for v, w in zip(values[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def run_demo(out: str | None, fast: bool) -> int:
    """Run the demos; print progress, the results table and where plots went."""
    plots_wanted = out is not None
    have_plots = importlib.util.find_spec("matplotlib") is not None
    plot_dir = out if (plots_wanted and have_plots) else None
    mode = "fast mode" if fast else "full size; --fast for a quicker run"
    _say(f"jaxopt-lite demo ({mode}); times include JAX compilation")
    rows: list[dict] = []
    plots: list[str] = []
    skipped: list[str] = []
    start = time.perf_counter()
    for index, (name, title, needs) in enumerate(DEMOS, 1):
        prefix = f"[{index}/{len(DEMOS)}] {title} ({name})"
        missing = _missing(needs)
        if missing:
            _say(f"{prefix}: skipped, needs {', '.join(missing)} ({EXTRA_HINT})")
            skipped.append(name)
            continue
        module = importlib.import_module(f"jaxopt_lite.examples.{name}")
        t0 = time.perf_counter()
        result = module.run(fast=fast, out=plot_dir)
        _say(f"{prefix}: done in {time.perf_counter() - t0:.1f} s")
        rows.extend({"demo": name, **row} for row in result["methods"])
        plots.extend(result["plots"])
    total = time.perf_counter() - start

    _say()
    _say(format_table(rows))
    _say()
    _say(f"total wall time: {total:.1f} s")
    if plots:
        _say(f"plots written to {os.path.abspath(out or '.')}:")
        for path in plots:
            _say(f"  {os.path.basename(path)}")
    elif plots_wanted and not have_plots:
        _say(f"plots skipped: matplotlib is not installed (to get them: {EXTRA_HINT})")
    _say("more examples: jaxopt-lite examples")
    if skipped:  # the exit status says that parts did not run
        _say(f"skipped demos: {', '.join(skipped)} (to run them: {EXTRA_HINT})")
        return 1
    return 0


def list_examples() -> int:
    """Print every example with its summary and the command that runs it."""
    from jaxopt_lite import examples

    names = examples.available()
    width = max(len(n) for n in names)
    _say("Examples shipped with jaxopt_lite (source in jaxopt_lite/examples/):")
    _say()
    for name in names:
        _say(f"  {name.ljust(width)}  {examples.describe(name)}")
    _say()
    _say("Run one with:")
    _say("  python -m jaxopt_lite.examples.<name> [--fast] [--out DIR]")
    _say(f"for example: python -m jaxopt_lite.examples.{names[0]} --out plots/")
    _say(f"Plots need matplotlib; digits_mlp needs scikit-learn ({EXTRA_HINT}).")
    _say(f"Folder: {os.path.dirname(examples.__file__)}")
    return 0


def run_bench(full: bool, out: str | None, extra: Sequence[str] = ()) -> int:
    """Forward to ``jaxopt_lite.benchmarks.main``."""
    try:
        benchmarks = importlib.import_module("jaxopt_lite.benchmarks")
    except ModuleNotFoundError as error:
        if error.name != "jaxopt_lite.benchmarks":
            raise
        benchmarks = None
    bench_main = getattr(benchmarks, "main", None)
    if bench_main is None:
        _say(
            "jaxopt-lite bench: the benchmark suite (jaxopt_lite.benchmarks.main) is "
            "not available in this installation.",
            file=sys.stderr,
        )
        return 1
    argv = (["--full"] if full else []) + (["--out", out] if out else []) + list(extra)
    code = bench_main(argv)
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jaxopt-lite`` and ``python -m jaxopt_lite``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status. Bad arguments exit with status 2 through argparse.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "demo":
        return run_demo(args.out, args.fast)
    if args.command == "examples":
        return list_examples()
    return run_bench(args.full, args.out, extra)
