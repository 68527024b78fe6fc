"""The jaxopt_lite benchmark suite: speed as ratios measured side by side.

Ten sections, each timing its contestants in one process, interleaved within
each repeat, reporting medians with compilation excluded (and reported apart):

1. ``loop``: training steps/s of `jaxopt_lite.fit` against a hand-written optax
   ``lax.scan`` loop, the optax Python-loop idiom and ``torch.optim``;
2. ``minimize``: full-batch `jaxopt_lite.minimize` against an optax Python
   loop, at a fixed number of steps and to a tolerance;
3. ``sweep``: `jaxopt_lite.sweep` over K learning rates against K sequential
   fits, with compile times;
4. ``update``: optimizer-update bandwidth against a device copy;
5. ``overhead``: what each of fit's features costs;
6. ``solvers``: jaxopt_lite's L-BFGS against scipy, optimistix, jaxopt and
   optax on the Moré-Garbow-Hillstrom problems (float64; all 35 problems from
   ``x0`` and ``10 x0`` in full mode; two small ones and logistic regression
   on the digits, 640 variables, in quick mode);
7. ``compile``: compilations when only hyper-parameter values change (none),
   the NaN guard's cost, the fixed cost of a small `minimize` call, sweep
   compile time against one fit's, and the persistent compilation cache;
8. ``streams``: `jaxopt_lite.fit` on a stream of NumPy batches against fit on
   the same batches in memory, a Python loop over them and a slow loader
   (overlap of loading and compute), and host-to-device throughput;
9. ``models``: fit with model state and a step key (a flax.linen CNN with
   BatchNorm and Dropout) against a hand-written scan and a Python loop, and
   the cost of the CSV and TensorBoard loggers;
10. ``fsdp``: per-device bytes of parameters and optimizer state with FSDP
    (a ``("data", "model")`` mesh) against replicated parameters, on 8
    simulated CPU devices in a child process;
11. ``checkpoints``: fit with a checkpoint after every chunk, as one ``.npz``
    and through Orbax, written while the host waits or in the background
    (how much of the save the next chunk hides);
12. ``bounded``: ``minimize`` with `jaxopt_lite.lbfgsb` against scipy's
    L-BFGS-B and jaxopt's ``LBFGSB`` on the bound-constrained CUTEst problems
    of ``sif2jax`` (solved counts, iterations, time).

Run it with ``jaxopt-lite bench`` (``--quick``, the default, takes about five
minutes on two quiet CPU cores), ``jaxopt-lite bench --full``, or
``python -m jaxopt_lite.benchmarks``. It prints one table per section and
writes every number, with the machine and the package versions, to a JSON
file. The suite uses only the public API plus optax, NumPy and (when
installed) PyTorch and scikit-learn.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from jaxopt_lite.benchmarks import _harness

__all__ = ["GPU_SECTIONS", "SECTIONS", "main", "run"]

SECTIONS = (
    "loop",
    "minimize",
    "sweep",
    "update",
    "overhead",
    "solvers",
    "compile",
    "streams",
    "models",
    "fsdp",
    "checkpoints",
    "bounded",
)

# what `--gpu` runs: fit against a Python loop and a scan (MLP and CNN), a
# sweep of 64 runs against 64 fits, and stream throughput
GPU_SECTIONS = ("loop", "models", "sweep", "streams")

_COLUMNS = {
    "loop": (
        "Loop throughput (MLP on digits, Adam, batch 128)",
        [
            "hidden",
            "contestant",
            "steps",
            "steps_per_s",
            "median_s",
            "compile_s",
            "fit_speedup",
        ],
    ),
    "minimize": (
        "Full-batch minimize vs an optax Python loop",
        ["problem", "contestant", "steps", "steps_per_s", "median_s", "compile_s"],
    ),
    "sweep": (
        "sweep over K learning rates vs K sequential fits",
        [
            "K",
            "sweep_run_s",
            "sequential_run_s",
            "speedup_run",
            "sweep_compile_s",
            "compile_vs_fit",
            "sweep_total_s",
            "sequential_total_s",
            "speedup_total",
        ],
    ),
    "update": (
        "Optimizer update bandwidth (float32, buffers donated)",
        [
            "leaves",
            "optimizer",
            "contestant",
            "median_s",
            "gb_per_s",
            "vs_copy",
            "ours_speedup",
        ],
    ),
    "compile": (
        "Backend compilations: first call, then three calls with new "
        "hyper-parameter values",
        [
            "family",
            "fit_first",
            "fit_later",
            "minimize_first",
            "minimize_later",
            "sweep_first",
            "sweep_later",
        ],
    ),
    "overhead": (
        "fit feature overheads (time relative to fit's defaults and to the "
        "hand-written optax scan)",
        ["variant", "steps_per_s", "compile_s", "time_vs_default", "time_vs_scan"],
    ),
    # the columns are the solvers that ran; each cell reads
    # "solved iterations/fun_evals time"
    "solvers": ("Full-batch solvers (float64, ||grad||_2 <= 1e-6)", ["problem", "n"]),
    "streams": (
        "fit on a stream of batches (MLP on digits, hidden 32, Adam, batch 128)",
        [
            "contestant",
            "steps",
            "steps_per_s",
            "median_s",
            "compile_s",
            "time_vs_in_memory",
            "mb_per_s",
        ],
    ),
    "checkpoints": (
        "fit with a checkpoint after every chunk (MLP on digits, two hidden "
        "layers, Adam, batch 128)",
        ["variant", "steps", "saves", "median_s", "time_vs_none", "save_ms"],
    ),
    "models": (
        "fit with model state and a step key (flax.linen CNN with BatchNorm and "
        "Dropout on digits, Adam, batch 64)",
        ["contestant", "steps", "steps_per_s", "median_s", "compile_s", "fit_speedup"],
    ),
    "fsdp": (
        "FSDP: the fullest device's bytes of parameters + Adam state, 8 simulated "
        "CPU devices (64 -> H -> H -> 10 MLP, batch 128)",
        [
            "layout",
            "hidden",
            "params_bytes",
            "opt_state_bytes",
            "bytes_per_device",
            "vs_replicated",
            "steps_per_s",
        ],
    ),
    # the columns are the solvers that ran; each cell reads
    # "solved iterations/fun_evals time"
    "bounded": (
        "Bound-constrained problems: L-BFGS-B (float64, projected gradient <= 1e-5)",
        ["problem", "n"],
    ),
}


def _runners(mode: _harness.Mode, data: dict) -> dict[str, Callable[[], dict]]:
    from jaxopt_lite.benchmarks import (
        _bounded,
        _checkpoints,
        _compile,
        _fsdp,
        _fullbatch,
        _loops,
        _models,
        _solver_section,
        _streams,
        _sweeps,
        _updates,
    )

    return {
        "loop": lambda: _loops.throughput(mode, data),
        "minimize": lambda: _fullbatch.fullbatch(mode, data),
        "sweep": lambda: _sweeps.sweeps(mode, data),
        "update": lambda: _updates.updates(mode),
        "overhead": lambda: _loops.overheads(mode, data),
        "solvers": lambda: _solver_section.solvers(mode, data),
        "compile": lambda: _compile.compile_once(mode, data),
        "streams": lambda: _streams.streams(mode, data),
        "models": lambda: _models.models(mode, data),
        "fsdp": lambda: _fsdp.fsdp(mode),
        "checkpoints": lambda: _checkpoints.checkpoints(mode, data),
        "bounded": lambda: _bounded.bounded(mode),
    }


def _ratio_lines(name: str, result: dict[str, Any]) -> list[str]:
    lines = []
    for ratio in result.get("ratios", []):
        items = [
            f"{k}={_harness.fmt(v)}"
            for k, v in ratio.items()
            if k not in ("hidden", "problem")
        ]
        label = ratio.get("hidden", ratio.get("problem"))
        lines.append(f"  {name} [{label}]: " + ", ".join(items))
    if "per_call" in result:
        pc = result["per_call"]
        lines.append(
            f"  fixed cost per call ({pc['steps']} steps): fit "
            f"{pc['fit_call_s'] * 1e3:.2f} ms, hand-written scan "
            f"{pc['scan_call_s'] * 1e3:.2f} ms"
        )
    if "vmap" in result:
        items = [f"{k}={_harness.fmt(v)}" for k, v in result["vmap"].items()]
        lines.append(f"  {name} [vmap]: " + ", ".join(items))
    lines += [f"  skipped: {s}" for s in result.get("skipped", [])]
    return lines


def run(
    mode: str = "quick",
    sections: Sequence[str] = SECTIONS,
    *,
    repeats: int | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark sections of ``mode`` and return every number.

    Args:
        mode: ``"quick"``, ``"full"`` or ``"smoke"`` (a few steps, for tests).
        sections: which of `SECTIONS` to run.
        repeats: timed repeats per contestant (default: the mode's).
        echo: where the tables go, line by line.

    Returns:
        A JSON-ready dict: ``mode``, ``machine``, ``versions``, ``date``,
        ``load_average`` (start and end), ``dataset``, ``elapsed_s`` and
        ``sections`` (one dict per section, each with its ``rows``).
    """
    if mode not in _harness.MODES:
        raise ValueError(f"mode={mode!r}: use one of {sorted(_harness.MODES)}.")
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown sections {unknown}; choose from {list(SECTIONS)}.")
    settings = _harness.MODES[mode]
    if repeats is not None:
        if repeats < 1:
            raise ValueError(f"repeats={repeats!r} must be >= 1.")
        settings = settings._replace(repeats=repeats, update_repeats=repeats)

    from jaxopt_lite.benchmarks import _problems

    start = time.perf_counter()
    report: dict[str, Any] = {"mode": mode, **_harness.describe_machine()}
    report["load_average"] = {"start": _harness.load_average()}
    data, report["dataset"] = _problems.digits()
    m = report["machine"]
    echo(
        f"jaxopt_lite benchmarks, {mode} mode: {m['cpu_model']}, {m['cpu_count']} "
        f"cores, {m['jax_backend']} ({m['device_kind']}); load average "
        f"{report['load_average']['start']}"
    )
    runners = _runners(settings, data)
    report["sections"] = {}
    for name in sections:
        t0 = time.perf_counter()
        result = runners[name]()
        result["elapsed_s"] = time.perf_counter() - t0
        report["sections"][name] = result
        title, columns = _COLUMNS[name]
        columns = result.get("columns", columns)
        echo("")
        echo(_harness.table(f"[{name}] {title}", result["rows"], columns).rstrip())
        for line in _ratio_lines(name, result):
            echo(line)
        echo(f"  ({result['elapsed_s']:.1f} s)")
    report["load_average"]["end"] = _harness.load_average()
    report["elapsed_s"] = time.perf_counter() - start
    return report


def _default_out(mode: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = os.path.join("benchmarks", "results")
    if os.path.isdir(folder):
        return os.path.join(folder, f"{mode}-{stamp}.json")
    return f"jaxopt-lite-bench-{mode}-{stamp}.json"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jaxopt-lite bench`` command: parse ``argv``, run, print, save JSON.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``), e.g.
            ``["--full", "--out", "results.json"]``.

    Returns:
        The exit status (0).
    """
    parser = argparse.ArgumentParser(
        prog="jaxopt-lite bench",
        description="Benchmark jaxopt_lite against optax loops and torch.optim, "
        "as ratios measured side by side in one process.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="small sizes, about five minutes on two CPU cores (the default)",
    )
    group.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="all sizes (hidden 32/256/1024, 50M-parameter updates, ...)",
    )
    group.add_argument(
        "--gpu",
        dest="mode",
        action="store_const",
        const="gpu",
        help="the GPU targets (loop, models, sweep, streams) on the default GPU, "
        "in about ten minutes on one H100",
    )
    group.add_argument(
        "--smoke",
        dest="mode",
        action="store_const",
        const="smoke",
        help="a few steps of everything, to check that the suite runs",
    )
    parser.set_defaults(mode="quick")
    parser.add_argument(
        "--out",
        help="JSON file to write (default: benchmarks/results/<mode>-<time>.json "
        "when that folder exists, else ./jaxopt-lite-bench-<mode>-<time>.json)",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated sections to run, from {','.join(SECTIONS)}",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per contestant")
    args = parser.parse_args(argv)
    sections = SECTIONS if not args.only else tuple(args.only.split(","))
    try:
        if args.mode == "gpu":
            sections = tuple(args.only.split(",")) if args.only else GPU_SECTIONS
            if jax.default_backend() != "gpu":
                parser.error(
                    f"--gpu needs a GPU; JAX's default backend is "
                    f"{jax.default_backend()!r}."
                )
        report = run(args.mode, sections, repeats=args.repeats)
    except ValueError as error:
        parser.error(str(error))
    out = args.out or _default_out(args.mode)
    folder = os.path.dirname(out)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, allow_nan=True)
        f.write("\n")
    print(f"\nwrote {out}")
    return 0
