"""Section "compile": compile once, guard for free, little fixed cost.

* reuse: after a first call, calls with new hyper-parameter values compile
  nothing (backend compilations counted with `jax.monitoring`) in `fit`,
  `minimize` and `sweep`, for each optimizer family;
* guard: `fit` with its defaults (NaN guard on) and with
  ``skip_nonfinite=False`` against a hand-written optax ``lax.scan``,
  interleaved, on the digits MLP;
* fixed cost: a small `minimize` call against its compiled program alone;
* sweep compile time against one `fit`'s, at K configurations;
* persistent cache: first-step latency of a fresh Python process, with and
  without ``jax_compilation_cache_dir`` (a warm cache); the best of two
  processes of each (one in quick mode).

Quick mode checks five optimizer families for recompilations, full mode all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness, _problems
from jaxopt_lite.benchmarks._harness import Contestant
from jaxopt_lite.benchmarks._loops import (
    LEARNING_RATE,
    fit_contestant,
    scan_contestant,
)

_BACKEND = "/jax/core/compile/backend_compile_duration"

FAMILIES = {
    "sgd (momentum)": lambda v: jol.sgd(v, momentum=0.9),
    "adam": lambda v: jol.adam(v),
    "adamw (weight_decay)": lambda v: jol.adamw(1e-3, weight_decay=v),
    "rmsprop": lambda v: jol.rmsprop(v),
    "adagrad": lambda v: jol.adagrad(v),
    "lion": lambda v: jol.lion(v / 10),
    "lamb": lambda v: jol.lamb(v),
    "lars": lambda v: jol.lars(v),
    "adafactor": lambda v: jol.adafactor(v),
    "clip_by_global_norm chain": lambda v: jol.chain(
        jol.clip_by_global_norm(10 * v), jol.adam(1e-3)
    ),
    "schedule peak": lambda v: jol.adam(
        jol.warmup_cosine_decay_schedule(0.0, v, 5, 20)
    ),
}
_SMOKE_FAMILIES = ("schedule peak",)  # smoke: one family proves the rows
# a momentum, a decoupled weight decay, a factored state and a schedule
_QUICK_FAMILIES = (
    "sgd (momentum)",
    "adam",
    "adamw (weight_decay)",
    "adafactor",
    "schedule peak",
)


class _Backend:
    """Counts backend compilations while active."""

    def __enter__(self):
        self.count = 0

        def listener(event: str, duration_secs: float, **_: Any) -> None:
            if event == _BACKEND:
                self.count += 1

        self._listener = listener
        jax.monitoring.register_event_duration_secs_listener(listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


def _reuse(mode: _harness.Mode, data: dict) -> list[dict[str, Any]]:
    x = jnp.asarray(data["x"][:256])
    y = jnp.asarray(data["y"][:256])
    d = {"x": x, "y": y}
    params = _problems.init_mlp(jax.random.key(0), 8)

    def objective(p):
        return _problems.mlp_loss(p, d)

    names = {"smoke": _SMOKE_FAMILIES, "quick": _QUICK_FAMILIES}.get(
        mode.name, tuple(FAMILIES)
    )
    rows = []
    for name in names:
        make = FAMILIES[name]
        row: dict[str, Any] = {"family": name}
        drivers = {
            "fit": lambda v, make=make: jol.fit(
                _problems.mlp_loss,
                params,
                make(v),
                d,
                steps=10,
                batch_size=32,
                progress=False,
            ),
            "minimize": lambda v, make=make: jol.minimize(
                objective, params, make(v), steps=5
            ),
            "sweep": lambda v, make=make: jol.sweep(
                lambda learning_rate: make(learning_rate),
                {"learning_rate": [v, 2 * v]},
                _problems.mlp_loss,
                params,
                d,
                steps=5,
                batch_size=32,
            ),
        }
        for driver, call in drivers.items():
            with _Backend() as first:
                call(1e-2)
            with _Backend() as later:
                for v in (2e-2, 5e-3, 3e-2):
                    call(v)
            row[f"{driver}_first"] = first.count
            row[f"{driver}_later"] = later.count
        rows.append(row)
    return rows


def _guard(mode: _harness.Mode, data: dict) -> list[dict[str, Any]]:
    jdata = jax.tree.map(jnp.asarray, data)
    steps = mode.loop_steps
    hiddens = mode.hidden if mode.name == "smoke" else (32, 256)
    rows = []
    for hidden in hiddens:
        params = _problems.init_mlp(jax.random.key(1), hidden)
        contestants = [
            fit_contestant("fit", params, jdata, steps),
            fit_contestant("fit, no guard", params, jdata, steps, skip_nonfinite=False),
            scan_contestant("scan", optax.adam(LEARNING_RATE), params, jdata, steps),
        ]
        t = _harness.interleaved(contestants, mode.repeats)
        rows.append(
            {
                "hidden": hidden,
                "steps_per_s": steps / t["fit"].median_s,
                "fit_vs_scan": _harness.speedup(t, "fit", "scan"),
                "no_guard_vs_scan": _harness.speedup(t, "fit, no guard", "scan"),
                "guard_on_vs_off": _harness.speedup(t, "fit", "fit, no guard"),
                "compile_s": t["fit"].compile_s,
            }
        )
    return rows


def _overhead(mode: _harness.Mode) -> dict[str, Any]:
    def fun(x):
        return jnp.sum((x - 3.0) ** 2)

    x0 = jnp.zeros(4)
    opt = jol.gd(0.1)
    reference = optax.sgd(0.1)

    @jax.jit
    def loop(x):
        """The same 5 steps as one bare compiled loop (the device work)."""

        def body(_, carry):
            x, s = carry
            u, s = reference.update(jax.grad(fun)(x), s, x)
            return optax.apply_updates(x, u), s

        x, _ = jax.lax.fori_loop(0, 5, body, (x, reference.init(x)))
        return x, fun(x)

    calls = 200

    def many(f):
        def run(_):
            for _ in range(calls):
                out = f()
            return out

        return run

    contestants = [
        Contestant("minimize", many(lambda: jol.minimize(fun, x0, opt, steps=5))),
        Contestant("program", many(lambda: float(loop(x0)[1]))),
    ]
    t = _harness.interleaved(contestants, max(mode.repeats, 3))
    per_call = t["minimize"].median_s / calls
    device = t["program"].median_s / calls
    return {
        "minimize_call_ms": per_call * 1e3,
        "program_call_ms": device * 1e3,
        "overhead_ms": (per_call - device) * 1e3,
    }


def _sweep_compile(mode: _harness.Mode, data: dict) -> list[dict[str, Any]]:
    jdata = jax.tree.map(jnp.asarray, data)
    params = _problems.init_mlp(jax.random.key(1), mode.hidden[0])
    steps = mode.sweep_steps
    ks = mode.sweep_ks if mode.name == "smoke" else (8, 64)
    rows = []
    for k in ks:
        # A new loss function object per measurement: nothing is reused.
        with _harness.compile_clock() as fit_durations:
            jol.fit(
                lambda p, b: _problems.mlp_loss(p, b),
                params,
                jol.adam(1e-3),
                jdata,
                steps=steps,
                batch_size=_problems.BATCH_SIZE,
                progress=False,
            )
        with _harness.compile_clock() as sweep_durations:
            jol.sweep(
                lambda learning_rate: jol.adam(learning_rate),
                {"learning_rate": np.geomspace(1e-4, 1e-1, k)},
                lambda p, b: _problems.mlp_loss(p, b),
                params,
                jdata,
                steps=steps,
                batch_size=_problems.BATCH_SIZE,
                max_parallel=k,
            )
        fit_s, sweep_s = sum(fit_durations), sum(sweep_durations)
        rows.append(
            {
                "k": k,
                "fit_compile_s": fit_s,
                "sweep_compile_s": sweep_s,
                "ratio": sweep_s / fit_s,
            }
        )
    return rows


_CHILD = textwrap.dedent(
    """
    import sys, time
    start = time.perf_counter()
    import jax
    if sys.argv[1]:
        jax.config.update("jax_compilation_cache_dir", sys.argv[1])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import jaxopt_lite as jol
    from jaxopt_lite.benchmarks import _problems
    data, _ = _problems.digits()
    params = _problems.init_mlp(jax.random.key(1), 32)
    jax.block_until_ready(params)
    ready = time.perf_counter()
    r = jol.fit(_problems.mlp_loss, params, jol.adam(1e-3), data, steps=1,
                batch_size=128, progress=False)
    jax.block_until_ready(r.params)
    print(time.perf_counter() - ready, time.perf_counter() - start)
    """
)


def _persistent(mode: _harness.Mode) -> dict[str, Any] | None:
    if mode.name == "smoke":
        return None
    env = {**os.environ}
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))

    def child(cache: str) -> tuple[float, float]:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, cache],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
        return float(out[0]), float(out[1])

    with tempfile.TemporaryDirectory() as cache:
        child(cache)  # fills the cache
        cold, warm = [], []
        for _ in range(1 if mode.name == "quick" else 2):  # interleaved
            cold.append(child(""))
            warm.append(child(cache))
    return {
        "first_step_s_no_cache": min(c[0] for c in cold),
        "first_step_s_warm_cache": min(w[0] for w in warm),
        "process_s_no_cache": min(c[1] for c in cold),
        "process_s_warm_cache": min(w[1] for w in warm),
    }


def compile_once(mode: _harness.Mode, data: dict) -> dict[str, Any]:
    """Run the section; see the module docstring."""
    start = time.perf_counter()
    sweep_rows = _sweep_compile(mode, data)
    ratios: list[dict[str, Any]] = list(_guard(mode, data))
    ratios.append({"problem": "minimize fixed cost", **_overhead(mode)})
    ratios += [{"problem": f"sweep compile, K={r['k']}", **r} for r in sweep_rows]
    persistent = _persistent(mode)
    if persistent is not None:
        ratios.append({"problem": "persistent cache", **persistent})
    return {
        "rows": _reuse(mode, data),
        "ratios": ratios,
        "section_s": time.perf_counter() - start,
    }
