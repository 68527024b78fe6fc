"""History rows inside the compiled loop (layer 2): sums, means, buffers."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any


class Window(NamedTuple):
    """Sums of the history row being built."""

    sums: dict[str, jax.Array]  # sums over its counted steps, in the metric dtype
    finite: jax.Array  # int32: counted steps (the finite ones, when guarded)
    skipped: jax.Array  # int32: skipped (non-finite) steps


class ChunkRows(NamedTuple):
    """The rows a chunk wrote, in fixed-size buffers with explicit masks."""

    train: dict[str, jax.Array]  # "step", "loss", ... : [rows]
    train_ran: jax.Array  # bool [rows]: the rows written
    evals: dict[str, jax.Array]  # "eval_step", "eval_<metric>": [evals]
    evals_ran: jax.Array  # bool [evals]


def empty_window(names: tuple[str, ...], dtype: Any) -> Window:
    """A row with no step yet, summing the metrics ``names`` in ``dtype``
    (float32, or float64 for float64 parameters)."""
    zero = jnp.zeros([], jnp.int32)
    return Window({k: jnp.zeros([], dtype) for k in names}, zero, zero)


def add_step(window: Window, metrics: dict[str, Any], finite: jax.Array) -> Window:
    """Add one step's metrics (counted only when ``finite``; otherwise the step
    counts as skipped)."""
    return Window(
        sums={
            k: s + jnp.where(finite, jnp.asarray(metrics[k], s.dtype), 0.0)
            for k, s in window.sums.items()
        },
        finite=window.finite + finite.astype(jnp.int32),
        skipped=window.skipped + (~finite).astype(jnp.int32),
    )


def finite_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    """``total / count``, the mean over ``count`` finite steps; NaN when
    ``count`` is 0."""
    return jnp.where(
        count > 0, total / jnp.maximum(count, 1).astype(total.dtype), jnp.nan
    )


def row(window: Window, step: jax.Array, opt_state: PyTree) -> dict[str, jax.Array]:
    """The history row of ``window``: means over its finite steps (NaN when
    there was none), ``skipped``, ``step`` and the last ``learning_rate``."""
    count = window.finite
    out = {k: finite_mean(s, count) for k, s in window.sums.items()}
    out["skipped"] = window.skipped
    out["step"] = step
    rate = current_learning_rate(opt_state)
    if rate is not None:
        out["learning_rate"] = rate.astype(window.sums["loss"].dtype)
    return out


def buffers(fields: dict[str, Any], size: int) -> dict[str, jax.Array]:
    """Zeroed ``[size]`` buffers for rows with the given fields."""
    return {k: jnp.zeros((size, *x.shape), x.dtype) for k, x in fields.items()}


def write(
    buffer: dict[str, jax.Array], at: jax.Array, values: dict[str, Any]
) -> dict[str, jax.Array]:
    """``buffer`` with row ``at`` set to ``values``."""
    return {k: b.at[at].set(values[k]) for k, b in buffer.items()}
