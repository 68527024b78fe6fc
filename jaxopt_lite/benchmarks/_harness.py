"""Timing, machine description and tables shared by the benchmark sections.

Every section times its contestants in one process, interleaved within each
repeat (A, B, C, A, B, C, ...), so that slow drifts of the machine (other jobs,
clock changes) hit all contestants alike. The first call of each contestant is
timed separately: for compiled contestants it holds the compilation, which is
reported as ``compile_s``: the tracing, lowering and XLA compilation time JAX
reports through `jax.monitoring` during that call (robust to run-time noise,
unlike "first call minus a typical call", which is kept as ``first_extra_s``).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax


class Mode(NamedTuple):
    """Sizes of one benchmark mode (``smoke`` for tests, ``quick``, ``full``)."""

    name: str
    repeats: int
    loop_steps: int  # training steps per timed call in the loop sections
    hidden: tuple[int, ...]
    torch_threads: tuple[int, ...] | None  # None: torch's default and 1
    torch_steps: int  # at most this many steps per timed torch call
    minimize_steps: int
    minimize_problems: tuple[str, ...]
    minimize_max_steps: int  # the most steps of the runs to a tolerance
    sweep_ks: tuple[int, ...]
    sweep_steps: int
    sweep_sequential_max_k: int  # largest K whose K separate fits are all run
    update_params: int
    update_leaves: tuple[int, ...]
    update_optimizers: tuple[str, ...]
    update_repeats: int
    # None: all of them; the fixed-cost pair ("fit, 10 steps", "scan, 10 steps")
    # is filtered too
    overhead_variants: tuple[str, ...] | None
    stream_steps: int  # batches per timed call in the streams section
    model_steps: int  # training steps per timed call in the models section
    # the same on CPU, where XLA runs convolution gradients inside a compiled
    # loop 10-40x slower than in a jitted step (jax-ml/jax#12868)
    model_steps_cpu: int


MODES = {
    "smoke": Mode(
        name="smoke",
        repeats=2,
        loop_steps=40,
        hidden=(16,),
        torch_threads=(1,),
        torch_steps=40,
        minimize_steps=50,
        minimize_problems=("rosenbrock-10d",),
        minimize_max_steps=50,
        sweep_ks=(2,),
        sweep_steps=20,
        sweep_sequential_max_k=0,
        update_params=20_000,
        update_leaves=(3,),
        update_optimizers=("adam",),
        update_repeats=2,
        overhead_variants=("default", "skip_nonfinite=False", "scan: optax.adam"),
        stream_steps=40,
        model_steps=20,
        model_steps_cpu=10,
    ),
    "quick": Mode(
        name="quick",
        repeats=3,
        loop_steps=2_000,
        hidden=(32,),
        torch_threads=None,
        torch_steps=500,
        minimize_steps=1_000,
        minimize_problems=("rosenbrock-10d", "logistic-regression-digits"),
        minimize_max_steps=10_000,
        sweep_ks=(1, 8, 64),
        sweep_steps=400,
        sweep_sequential_max_k=1,
        update_params=5_000_000,
        update_leaves=(1, 10, 200),
        update_optimizers=("adam",),
        update_repeats=5,
        overhead_variants=(
            "default",
            "progress=True",
            "chunk_size=1 (1 window)",
            "log_every=100",
            "skip_nonfinite=False",
            "replace=True",
            "shuffle=False",
            "microbatches=4",
            "compute_dtype=bfloat16",
            "skip_spikes=SpikeSkip()",
            "scan: optax.adam",
            "scan: jol.adam, grad_norm, lr",
            "scan: jol.adam, grad_norm, lr, guard",
            "fit: replace, no guard, 1 row",
            "fit, 10 steps",
            "scan, 10 steps",
        ),
        stream_steps=1_000,
        model_steps=1_000,
        model_steps_cpu=30,
    ),
    # The GPU targets in about ten minutes on one H100 (`--gpu`): fit against
    # a Python loop and a hand-written scan (MLP and CNN), a sweep of 64
    # learning rates against 64 sequential fits, and stream throughput.
    "gpu": Mode(
        name="gpu",
        repeats=5,
        loop_steps=2_000,
        hidden=(32, 1024),
        torch_threads=None,
        torch_steps=500,
        minimize_steps=1_000,
        minimize_problems=("rosenbrock-10d",),
        minimize_max_steps=10_000,
        sweep_ks=(1, 64),
        sweep_steps=400,
        sweep_sequential_max_k=64,
        update_params=5_000_000,
        update_leaves=(1, 200),
        update_optimizers=("adam",),
        update_repeats=5,
        overhead_variants=("default", "fit, 10 steps", "scan, 10 steps"),
        stream_steps=2_000,
        model_steps=1_000,
        model_steps_cpu=100,
    ),
    "full": Mode(
        name="full",
        repeats=7,
        loop_steps=5_000,
        hidden=(32, 256, 1024),
        torch_threads=None,
        torch_steps=2_000,
        minimize_steps=5_000,
        minimize_problems=("rosenbrock-10d", "logistic-regression-digits"),
        minimize_max_steps=50_000,
        sweep_ks=(1, 8, 64),
        sweep_steps=2_100,
        sweep_sequential_max_k=64,
        update_params=50_000_000,
        update_leaves=(1, 10, 200),
        update_optimizers=("adam", "adamw", "lion"),
        update_repeats=7,
        overhead_variants=None,
        stream_steps=8_000,
        model_steps=4_000,
        model_steps_cpu=400,
    ),
}


class Timing(NamedTuple):
    """Wall times of one contestant: the first call and the repeats."""

    first_s: float
    times_s: list[float]
    compile_s: float  # JAX's tracing, lowering and XLA compilation in the first call

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def first_extra_s(self) -> float:
        """First call minus a typical call: compilation plus any other
        first-call cost (allocation, caches), and timing noise."""
        return max(self.first_s - self.median_s, 0.0)


_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@contextlib.contextmanager
def compile_clock() -> Iterator[list[float]]:
    """Collect the durations JAX reports (through `jax.monitoring`) for tracing,
    lowering and compiling while the block runs; their sum is the compile time."""
    durations: list[float] = []

    def listener(event: str, duration_secs: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:
            durations.append(duration_secs)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield durations
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


class Contestant(NamedTuple):
    """``run(setup())`` is timed; ``setup`` (untimed) prepares fresh inputs, e.g.
    copies of buffers that ``run`` donates."""

    name: str
    run: Callable[[Any], Any]
    setup: Callable[[], Any] | None = None


def _call(contestant: Contestant) -> float:
    arg = contestant.setup() if contestant.setup is not None else None
    jax.block_until_ready(arg)
    start = time.perf_counter()
    out = contestant.run(arg)
    jax.block_until_ready(out)
    return time.perf_counter() - start


def interleaved(contestants: Sequence[Contestant], repeats: int) -> dict[str, Timing]:
    """Time each contestant once (first call), then ``repeats`` times, interleaved."""
    first, compiles = {}, {}
    for c in contestants:
        with compile_clock() as durations:
            first[c.name] = _call(c)
        compiles[c.name] = sum(durations)
    times: dict[str, list[float]] = {c.name: [] for c in contestants}
    for _ in range(repeats):
        for c in contestants:
            times[c.name].append(_call(c))
    return {name: Timing(first[name], times[name], compiles[name]) for name in first}


def time_ratio(timings: dict[str, Timing], num: str, den: str) -> float:
    """``time(num) / time(den)``: the median over repeats of the per-repeat
    ratio (drift within a repeat cancels)."""
    a, b = timings[num].times_s, timings[den].times_s
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def speedup(timings: dict[str, Timing], fast: str, slow: str) -> float:
    """How many times faster ``fast`` ran than ``slow`` (> 1: faster)."""
    return time_ratio(timings, slow, fast)


def cpu_model() -> str:
    """The CPU's marketing name, best effort."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (``None``: absent)."""
    return _version(name)


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def source_revision() -> dict[str, Any] | None:
    """The git commit of the measured source and whether it had local changes,
    when the package runs from a git checkout (``None`` otherwise)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "jaxopt_lite"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "local_changes": bool(status.strip())}


def describe_machine() -> dict[str, Any]:
    """Platform, CPU, cores, JAX devices and package versions."""
    device = jax.devices()[0]
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "jax_backend": jax.default_backend(),
            "device_kind": device.device_kind,
            "device_count": jax.device_count(),
        },
        "versions": {
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "jaxlib": _version("jaxlib"),
            "optax": _version("optax"),
            "numpy": _version("numpy"),
            "torch": _version("torch"),
            "jaxopt_lite": _version("jaxopt-lite"),
        },
        "source": source_revision(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def peer_module(name: str) -> Any:
    """``import name`` for a peer that may not be installed (so the type
    checker does not need it). A peer's own deprecation notice on import
    (jaxopt announces it is unmaintained) is not an error of the benchmark."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)


def optional_module(name: str) -> Any | None:
    """`peer_module`, or ``None`` when ``name`` is not installed."""
    try:
        return peer_module(name)
    except ImportError:
        return None


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


def table(title: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """An aligned text table of ``rows`` (missing cells print as ``-``)."""
    body = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(x) for x in col) for col in zip(columns, *body, strict=True)]
    lines = [
        "  ".join(
            (x.ljust(w) if j == 0 else x.rjust(w))
            for j, (x, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [list(columns), *body]
    ]
    rule = "-" * max(len(title), len(lines[0]))
    return "\n".join([title, rule, *lines, ""])
