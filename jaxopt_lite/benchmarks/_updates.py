"""Section 4: optimizer-update bandwidth against a device copy.

One jitted step ``(params, state) -> (params, state)`` applies the update for a
fixed gradient, with the parameter and state buffers donated (as in training).
An ideal fused Adam/AdamW step reads the gradient, parameters and both moments
and writes the parameters and moments: 7 arrays of N floats; Lion (one moment)
moves 5. The physical limit is a donated element-wise copy ``x + 1`` (read
once, written once) of a tree with the same number of leaves, each 3.5 times
longer, so that it moves the same bytes as an ideal Adam step (caches help both
alike); both are reported in GB/s.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness
from jaxopt_lite.benchmarks._harness import Contestant

LEARNING_RATE = 1e-3
# arrays of N elements read + written by one ideal fused step
ARRAYS_MOVED = {"adam": 7, "adamw": 7, "lion": 5}


def _ours(name: str) -> optax.GradientTransformation:
    return {
        "adam": lambda: jol.adam(LEARNING_RATE),
        "adamw": lambda: jol.adamw(LEARNING_RATE),
        "lion": lambda: jol.lion(LEARNING_RATE),
    }[name]()


def _optax(name: str) -> optax.GradientTransformation:
    return {
        "adam": lambda: optax.adam(LEARNING_RATE),
        "adamw": lambda: optax.adamw(LEARNING_RATE),
        "lion": lambda: optax.lion(LEARNING_RATE),
    }[name]()


def split_tree(n: int, leaves: int) -> dict[str, jax.Array]:
    """``n`` float32 parameters in ``leaves`` arrays of nearly equal size."""
    sizes = [n // leaves + (i < n % leaves) for i in range(leaves)]
    return {f"p{i:03d}": jnp.full(s, 0.5, jnp.float32) for i, s in enumerate(sizes)}


def _update_contestant(name, optimizer, params) -> Contestant:
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    fresh = jax.tree.map(jnp.copy, params)
    carry = {"state": (fresh, optimizer.init(fresh))}

    def run(_):
        carry["state"] = step(*carry["state"], grads)
        return carry["state"]

    return Contestant(name, run)


def copy_sizes(params) -> list[int]:
    """Leaf sizes of the copied tree: it moves the bytes of an Adam step."""
    return [round(ARRAYS_MOVED["adam"] / 2 * x.size) for x in jax.tree.leaves(params)]


def _copy_contestant(name, params) -> Contestant:
    copy = jax.jit(lambda t: jax.tree.map(lambda x: x + 1.0, t), donate_argnums=0)
    carry = {"tree": [jnp.zeros(size, jnp.float32) for size in copy_sizes(params)]}

    def run(_):
        carry["tree"] = copy(carry["tree"])
        return carry["tree"]

    return Contestant(name, run)


def updates(mode: _harness.Mode) -> dict[str, Any]:
    n = mode.update_params
    rows = []
    for leaves in mode.update_leaves:
        params = split_tree(n, leaves)
        contestants = [_copy_contestant("copy", params)]
        for opt in mode.update_optimizers:
            contestants += [
                _update_contestant(f"{opt}: jaxopt_lite", _ours(opt), params),
                _update_contestant(f"{opt}: optax", _optax(opt), params),
                _update_contestant(
                    f"{opt}: optax.flatten", optax.flatten(_optax(opt)), params
                ),
            ]
        timings = _harness.interleaved(contestants, mode.update_repeats)
        copy_bytes = 2 * 4 * sum(copy_sizes(params))
        copy_gbs = copy_bytes / timings["copy"].median_s / 1e9
        rows.append(
            {
                "leaves": leaves,
                "contestant": "copy",
                "optimizer": None,
                "median_s": timings["copy"].median_s,
                "gb_per_s": copy_gbs,
                "vs_copy": 1.0,
            }
        )
        for c in contestants[1:]:
            opt, impl = c.name.split(": ")
            t = timings[c.name]
            gbs = ARRAYS_MOVED[opt] * 4 * n / t.median_s / 1e9
            rows.append(
                {
                    "leaves": leaves,
                    "contestant": impl,
                    "optimizer": opt,
                    "median_s": t.median_s,
                    "compile_s": t.compile_s,
                    "gb_per_s": gbs,
                    # bandwidth relative to the copy's, per repeat
                    "vs_copy": ARRAYS_MOVED[opt]
                    / ARRAYS_MOVED["adam"]
                    * _harness.time_ratio(timings, "copy", c.name),
                    "ours_speedup": _harness.speedup(
                        timings, f"{opt}: jaxopt_lite", c.name
                    ),
                }
            )
    return {
        "params": n,
        "dtype": "float32",
        "arrays_moved": ARRAYS_MOVED,
        "rows": rows,
    }
