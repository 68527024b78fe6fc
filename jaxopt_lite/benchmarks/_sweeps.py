"""Section 3: ``sweep`` over K learning rates against K sequential ``fit`` calls.

The K fits each get their own ``adam(learning_rate)``, so each compiles its own
loop: that is what a loop over learning rates costs a user. Their steady-state
time (compilation excluded) is K times that of one fit, all fits doing the same
amount of work whatever the rate; their end-to-end time is measured by running
them (for K up to the mode's limit) or estimated beyond as K x the first
call of one fit (compile + run).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness, _loops, _problems
from jaxopt_lite.benchmarks._harness import Contestant

B = _problems.BATCH_SIZE


def make_adam(learning_rate):
    """The swept optimizer (one object for all calls, so `sweep` reuses its
    compiled loop)."""
    return jol.adam(learning_rate)


def _rates(k: int) -> np.ndarray:
    return np.logspace(-4, -1, k).astype(np.float32)


def sweeps(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    steps = mode.sweep_steps
    hidden = mode.hidden[0]
    jdata = jax.tree.map(jnp.asarray, data)
    params = _problems.init_mlp(jax.random.key(1), hidden)
    key = jax.random.key(0)

    def sweep_contestant(k: int) -> Contestant:
        hyperparams = {"learning_rate": _rates(k)}

        def run(_):
            result = jol.sweep(
                make_adam,
                hyperparams,
                _problems.mlp_loss,
                params,
                jdata,
                steps=steps,
                batch_size=B,
                key=key,
            )
            return result.params

        return Contestant(f"sweep K={k}", run)

    contestants = [_loops.fit_contestant("fit", params, jdata, steps)]
    contestants += [sweep_contestant(k) for k in mode.sweep_ks]
    timings = _harness.interleaved(contestants, mode.repeats)
    fit_t = timings["fit"]

    def sequential(k: int) -> float:
        """K fits with K fresh optimizers (K compilations), one after another."""
        start = time.perf_counter()
        for rate in _rates(k):
            result = jol.fit(
                _problems.mlp_loss,
                params,
                jol.adam(float(rate)),
                jdata,
                steps=steps,
                batch_size=B,
                key=key,
                progress=False,
            )
            jax.block_until_ready(result.params)
        return time.perf_counter() - start

    rows = []
    for k in mode.sweep_ks:
        t = timings[f"sweep K={k}"]
        measured = k <= mode.sweep_sequential_max_k
        seq_total = sequential(k) if measured else k * fit_t.first_s
        rows.append(
            {
                "K": k,
                "sweep_run_s": t.median_s,
                "sweep_compile_s": t.compile_s,
                "sweep_total_s": t.first_s,
                "sequential_run_s": k * fit_t.median_s,
                "sequential_total_s": seq_total,
                "sequential_total_measured": measured,
                "speedup_run": k * _harness.time_ratio(timings, "fit", f"sweep K={k}"),
                "speedup_total": seq_total / t.first_s,
                "compile_vs_fit": t.compile_s / fit_t.compile_s,
                "run_steps_per_s": k * steps / t.median_s,
            }
        )
    return {
        "steps": steps,
        "hidden": hidden,
        "batch_size": B,
        "fit_run_s": fit_t.median_s,
        "fit_compile_s": fit_t.compile_s,
        "rows": rows,
    }
