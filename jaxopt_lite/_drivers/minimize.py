"""`minimize`: full-batch, deterministic optimization in one compiled loop."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import validate as v
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._loop import train as _loop

PyTree = Any


class MinimizeResult(NamedTuple):
    """What `minimize` returns.

    Attributes:
        params: the final parameters.
        value: the objective at ``params`` (a Python float).
        grad_norm: the gradient's global L2 norm at ``params``.
        steps: updates taken.
        converged: ``grad_norm <= tol`` was reached (always ``False`` without
            ``tol``).
        history: ``value``, ``grad_norm`` and (when the optimizer exposes it)
            ``learning_rate`` before each update, as NumPy arrays of length
            ``steps``.
        opt_state: the final optimizer state.
        aux: the auxiliary output of ``fun`` at ``params`` (``has_aux=True``).
    """

    params: PyTree
    value: float
    grad_norm: float
    steps: int
    converged: bool
    history: dict[str, np.ndarray]
    opt_state: PyTree
    aux: Any


def _compiled(fun: Callable, optimizer: Any, has_aux: bool, steps: int) -> Callable:
    """The compiled loop for ``fun`` and ``optimizer`` (cached by structure,
    see `programs`), with its inputs bound."""
    key, inputs = _programs.split({"fun": fun}, optimizer)
    run = _programs.program(
        ("minimize", key, has_aux, steps), lambda: _build(key, has_aux, steps)
    )
    return functools.partial(run, inputs)


def _build(key, has_aux: bool, steps: int) -> Callable:
    def run(inputs, x0, tol):
        fns, optimizer = _programs.join(key, inputs)
        optimizer = optax.with_extra_args_support(optimizer)
        final = _loop.minimize_loop(fns["fun"], optimizer, has_aux, steps, x0, tol)
        # What the host reads, in one buffer (one transfer instead of six).
        dtype = jnp.promote_types(final.value.dtype, jnp.float32)
        scalars = jnp.stack([final.step, final.value, final.grad_norm]).astype(dtype)
        rows = [final.history[k].astype(dtype) for k in sorted(final.history)]
        return final, jnp.concatenate([scalars, *rows])

    return jax.jit(run)


def minimize(
    fun: Callable[[PyTree], jax.Array],
    x0: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    steps: int = 1000,
    tol: float | None = None,
    has_aux: bool = False,
) -> MinimizeResult:
    r"""Minimize a deterministic function with full-batch steps, compiled whole.

    $$
    x_{k+1} = x_k + \mathrm{update}(\nabla f(x_k)), \qquad
    \text{stop when } \lVert \nabla f(x_k) \rVert_2 \le \mathrm{tol}
    \text{ or } k = \mathrm{steps}
    $$

    The loop (gradient, optimizer update, stopping test, history) runs as one
    ``lax.while_loop`` inside ``jax.jit``; the optimizer receives ``value=`` so
    Polyak step sizes and plateau schedules work. Calling again with the same
    ``fun`` and ``optimizer`` objects and inputs of the same shapes reuses the
    compiled loop. A non-finite value also stops the loop (``converged`` is then
    ``False``).

    Args:
        fun: the objective, ``fun(params) -> scalar`` (``(scalar, aux)`` with
            ``has_aux``).
        x0: initial parameters: any pytree of floating-point arrays.
        optimizer: any optax gradient transformation, e.g. ``jaxopt_lite.gd(0.1)``.
        steps: the most updates to take (>= 1).
        tol: stop once the gradient's global norm is at most ``tol`` (>= 0).
        has_aux: ``fun`` returns ``(value, aux)``.

    Returns:
        A `MinimizeResult`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> result = jol.minimize(lambda x: jnp.sum((x - 3.0) ** 2),
        ...                       jnp.zeros(2), jol.gd(0.1), steps=500, tol=1e-5)
        >>> result.converged, result.steps, result.params.round(4)
        (True, 62, Array([3., 3.], dtype=float32))
    """
    v.check_callable("fun", fun)
    v.check_transform("optimizer", optimizer)
    v.check_int("steps", steps)
    if not isinstance(has_aux, bool):
        raise TypeError(f"has_aux must be True or False, got {has_aux!r}.")
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
            raise TypeError(f"tol must be a number or None, got {tol!r}.")
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(
                f"tol={tol!r} is not allowed: it must be a finite number >= 0."
            )
    x0 = _checks.check_params("x0", x0)
    _programs.check_once(
        ("minimize", has_aux),
        fun,
        x0,
        lambda: _checks.check_scalar_output("fun", fun, (x0,), has_aux=has_aux),
    )

    run = _compiled(fun, optimizer, has_aux, steps)
    final, packed = run(x0, np.float32(-1.0 if tol is None else tol))
    packed = np.asarray(packed)
    taken, value, grad_norm = int(packed[0]), float(packed[1]), float(packed[2])
    rows = packed[3:].reshape(len(final.history), steps)
    history = {
        k: row[:taken].astype(np.float32)
        for k, row in zip(sorted(final.history), rows, strict=True)
    }
    return MinimizeResult(
        params=final.params,
        value=value,
        grad_norm=grad_norm,
        steps=taken,
        converged=tol is not None and grad_norm <= tol,
        history=history,
        opt_state=final.opt_state,
        aux=final.aux,
    )
