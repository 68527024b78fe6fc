"""What `minimize` returns, and how the compiled loop's numbers reach it.

The loop's counts, final value and gradient norm and its history rows come
back packed into one array of the value's precision (`pack`), read on the
host with a single transfer (`unpack`); the counts are int32 stored bit for
bit (``lax.bitcast_convert_type``), so they stay exact in any precision.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxopt_lite._loop import full_batch

PyTree = Any
_COUNT_BYTES = 16  # step, status, fun_evals, grad_evals: four int32


class MinimizeResult(NamedTuple):
    """What `minimize` returns.

    Called with concrete inputs, the scalars are Python numbers and the history
    NumPy arrays cut to the steps taken. When the results are traced (under
    ``jax.jit``, ``jax.vmap`` or ``jax.grad``, through the inputs or values
    ``fun`` closes over) every field is an array instead: ``status`` is
    then an int32 index into ``MinimizeResult.STATUSES`` and the history keeps
    all its rows (NaN past the last step).

    Attributes:
        params: the final parameters.
        value: the objective at ``params``.
        grad_norm: the global L2 norm of the gradient at ``params`` (of the
            projected gradient when there are bounds).
        steps: iterations done (each one optimizer update).
        converged: ``status == "converged"``.
        history: ``value``, ``grad_norm`` and (when the optimizer state holds
            one, as line searches do) ``learning_rate`` at each iteration, for
            the first ``history_size`` iterations, in the value's precision.
        opt_state: the final optimizer state.
        aux: the auxiliary output of ``fun`` at ``params`` (``has_aux=True``).
        status: why the loop stopped: ``"converged"``, ``"max_steps"``,
            ``"nonfinite"`` or ``"linesearch_failed"``.
        fun_evals: evaluations of ``fun``, line-search trials included.
        grad_evals: evaluations of its gradient, line-search trials included.
    """

    params: PyTree
    value: Any
    grad_norm: Any
    steps: Any
    converged: Any
    history: dict[str, Any]
    opt_state: PyTree
    aux: Any
    status: Any
    fun_evals: Any
    grad_evals: Any

    STATUSES = full_batch.STATUSES


def pack(final: full_batch.FullBatchState) -> jax.Array:
    """``final``'s counts, value, gradient norm and history rows as one 1-D
    array of the value's dtype (inside the compiled program)."""
    dtype = jnp.result_type(final.value)
    counts = jnp.stack([final.step, final.status, final.fun_evals, final.grad_evals])
    if dtype.itemsize == 8:  # two int32 per element
        counts = counts.reshape(2, 2)
    bits = jax.lax.bitcast_convert_type(counts.astype(jnp.int32), dtype)
    scalars = jnp.stack([final.value, final.grad_norm]).astype(dtype)
    return jnp.concatenate([bits.reshape(-1), scalars, final.history.reshape(-1)])


def _counts(bits: jax.Array) -> jax.Array:
    """The four int32 counts from the leading elements of a packed array."""
    itemsize = bits.dtype.itemsize
    if itemsize == 2:  # two elements per int32
        bits = bits.reshape(*bits.shape[:-1], 4, 2)
    counts = jax.lax.bitcast_convert_type(bits, jnp.int32)
    return counts.reshape(*counts.shape[:-2], 4) if itemsize == 8 else counts


def unpack(
    params: PyTree, opt_state: PyTree, aux: Any, packed: Any, columns: tuple
) -> MinimizeResult:
    """The result from the program's outputs: Python numbers and NumPy
    histories cut to the steps taken, or arrays when the outputs are traced
    (under ``jit``, ``vmap`` or ``grad``)."""
    n = _COUNT_BYTES // packed.dtype.itemsize
    # The packed array depends on everything the loop depends on: traced
    # inputs (or closed-over tracers) make it a tracer.
    if isinstance(packed, Tracer):
        step, status, fun_evals, grad_evals = jnp.moveaxis(
            _counts(jax.lax.stop_gradient(packed[..., :n])), -1, 0
        )
        rows = packed[..., n + 2 :].reshape(*packed.shape[:-1], -1, len(columns))
        return MinimizeResult(
            params, packed[..., n], packed[..., n + 1], step,
            status == full_batch.CONVERGED,
            {name: rows[..., i] for i, name in enumerate(columns)},
            opt_state, aux, status, fun_evals, grad_evals,
        )  # fmt: skip
    host = np.asarray(packed)  # the one transfer
    step, code, fun_evals, grad_evals = host[:n].view(np.int32).tolist()
    value, grad_norm = host[n : n + 2].tolist()
    rows = host[n + 2 :].reshape(-1, len(columns))[:step]
    status = full_batch.STATUSES[code]
    return MinimizeResult(
        params, value, grad_norm, step, status == "converged",
        {name: rows[:, i] for i, name in enumerate(columns)},
        opt_state, aux, status, fun_evals, grad_evals,
    )  # fmt: skip
