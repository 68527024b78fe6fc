"""Section 2: full-batch ``minimize`` against a hand-written optax Python loop.

Two problems: the 10-dimensional Rosenbrock function from
``(-1.2, 1, -1.2, 1, ...)`` with Adam, and L2-regularized multinomial logistic
regression on the digits with gradient descent. Each is timed for a fixed
number of steps (throughput; the Python loop never syncs) and to a gradient-norm
tolerance (the Python loop reads the norm on the host every step, as it must to
stop).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness, _problems
from jaxopt_lite.benchmarks._harness import Contestant


def _problems_table(data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {
            "problem": "rosenbrock-10d",
            "fun": _problems.rosenbrock,
            "x0": jnp.asarray([-1.2, 1.0] * 5),
            "ours": jol.adam(0.1),
            "optax": optax.adam(0.1),
            "optimizer": "adam(0.1)",
            "tol": 1e-3,
        },
        {
            "problem": "logistic-regression-digits",
            "fun": _problems.logistic_objective(data),
            "x0": {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)},
            "ours": jol.gd(2.0),
            "optax": optax.sgd(2.0),
            "optimizer": "gd(2.0)",
            "tol": 1e-3,
        },
    ]


def _optax_step(fun: Callable, optimizer: optax.GradientTransformation) -> Callable:
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state):
        value, grads = jax.value_and_grad(fun)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (
            optax.apply_updates(params, updates),
            opt_state,
            value,
            (optax.tree.norm(grads)),
        )

    return step


def _python_loop(name, step, x0, optimizer, steps, tol, record) -> Contestant:
    """``steps`` calls of the jitted ``step``; with ``tol``, the gradient norm
    is read every step and the loop breaks once it is at most ``tol``."""

    def setup():
        params = jax.tree.map(jnp.copy, x0)
        return params, optimizer.init(params)

    def run(arg):
        params, opt_state = arg
        taken = 0
        new = (params,)
        for _ in range(steps):
            # the norm returned is at the parameters before this update
            new = step(params, opt_state)  # donates params and opt_state
            if tol is not None and float(new[3]) <= tol:
                break
            taken += 1
            params, opt_state = new[0], new[1]
        record[name] = taken
        return new[0]

    return Contestant(name, run, setup)


def _minimize(name, fun, x0, optimizer, steps, tol, record) -> Contestant:
    def run(_):
        result = jol.minimize(fun, x0, optimizer, steps=steps, tol=tol)
        record[name] = result.steps
        return result.params

    return Contestant(name, run)


def fullbatch(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Steps/s at a fixed number of steps and time/steps to a tolerance."""
    steps = mode.minimize_steps
    max_steps = mode.minimize_max_steps
    rows, ratios = [], []
    for p in _problems_table(data):
        if p["problem"] not in mode.minimize_problems:
            continue
        record: dict[str, int] = {}
        fun, x0, tol, opt = p["fun"], p["x0"], p["tol"], p["optax"]
        step = _optax_step(fun, opt)
        contestants = [
            _minimize("minimize", fun, x0, p["ours"], steps, None, record),
            _python_loop("optax python loop", step, x0, opt, steps, None, record),
            _minimize("minimize, to tol", fun, x0, p["ours"], max_steps, tol, record),
            _python_loop(
                "optax python loop, to tol", step, x0, opt, max_steps, tol, record
            ),
        ]
        timings = _harness.interleaved(contestants, mode.repeats)
        for c in contestants:
            t = timings[c.name]
            taken = record[c.name]
            rows.append(
                {
                    "problem": p["problem"],
                    "optimizer": p["optimizer"],
                    "contestant": c.name,
                    "steps": taken,
                    "converged": "tol" in c.name and taken < max_steps,
                    "steps_per_s": taken / t.median_s,
                    "median_s": t.median_s,
                    "compile_s": t.compile_s,
                }
            )
        ratios.append(
            {
                "problem": p["problem"],
                "minimize_vs_python_loop": _harness.speedup(
                    timings, "minimize", "optax python loop"
                ),
                "minimize_vs_python_loop_to_tol": _harness.speedup(
                    timings, "minimize, to tol", "optax python loop, to tol"
                ),
                "steps_to_tol_minimize": record["minimize, to tol"],
                "steps_to_tol_python_loop": record["optax python loop, to tol"],
                "tol": tol,
            }
        )
    skipped = [
        f"{name} (not installed)"
        for name in ("jaxopt", "optimistix")
        if _harness.optional_module(name) is None
    ]
    skipped += [
        f"{name} (installed, but this suite has no adapter for it yet)"
        for name in ("jaxopt", "optimistix")
        if _harness.optional_module(name) is not None
    ]
    return {
        "steps": steps,
        "max_steps": max_steps,
        "rows": rows,
        "ratios": ratios,
        "skipped": skipped,
    }
