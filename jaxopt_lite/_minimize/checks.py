"""The checks of `minimize`'s arguments, cheap for repeated calls.

A solver is often called many times with the same settings (a loop over data
sets, an outer optimization): ``x0`` skips its full check when it is already
a tree of strongly typed floating-point JAX arrays, and the output check of
``fun`` traces it abstractly through ``jax.jit``, whose trace JAX
caches per function and shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxopt_lite._core import validate
from jaxopt_lite._host import checks

PyTree = Any
DIFF = ("implicit", "unroll")
# The most history rows `minimize` keeps (three columns of at most 8 bytes:
# 3 GiB), far below the int32 sizes a buffer must stay under.
MAX_HISTORY_ROWS = 2**27


def check_settings(
    steps: Any, tol: Any, rtol: Any, atol: Any, has_aux: Any, diff: Any,
    history_size: Any,
) -> None:  # fmt: skip
    """Check the scalar settings."""
    validate.check_count("steps", steps)
    validate.check_bool("has_aux", has_aux)
    for name, value in (("tol", tol), ("rtol", rtol), ("atol", atol)):
        _check_tolerance(name, value)
    validate.check_choice("diff", diff, DIFF)
    validate.check_count("history_size", history_size, minimum=0)
    rows = min(steps, history_size)
    if rows > MAX_HISTORY_ROWS:
        raise ValueError(
            f"history_size={history_size} with steps={steps} would keep {rows} "
            "rows of history, allocated before the first iteration (about "
            f"{rows * 3 * 8 / 2**30:.0f} GiB); at most {MAX_HISTORY_ROWS} rows "
            "are allowed: lower history_size (it keeps the first iterations), "
            "or use history_size=0."
        )


def _check_tolerance(name: str, value: Any) -> None:
    """``None`` or a finite scalar >= 0 (a tracer too: its shape is checked)."""
    if value is None:
        return
    validate.check_nonnegative(name, value)
    if np.ndim(value) != 0:
        raise TypeError(
            f"{name} must be a scalar (a number or a 0-d array), got an array of "
            f"shape {np.shape(value)}."
        )


def tolerances(tol: Any, rtol: Any, atol: Any, dtype: Any) -> tuple:
    """The three thresholds in ``dtype`` (``tol`` 0 when not given: an
    exactly zero gradient converges; ``rtol``, ``atol`` 0): NumPy scalars for
    concrete values (passed to the program without a device computation),
    tracers stay tracers."""
    given = tuple(0.0 if t is None else t for t in (tol, rtol, atol))
    if any(isinstance(t, Tracer) for t in given):
        return tuple(jnp.asarray(t, dtype) for t in given)
    return tuple(np.asarray(t, dtype) for t in given)


def check_x0(x0: PyTree) -> PyTree:
    """``x0`` as strongly typed floating-point JAX arrays (`check_params`),
    returned as it is when it already is one."""
    leaves = jax.tree.leaves(x0)
    if leaves and all(
        isinstance(x, jax.Array)
        and not isinstance(x, Tracer)
        and not x.weak_type
        and jnp.issubdtype(x.dtype, jnp.inexact)
        for x in leaves
    ):
        return x0
    return checks.check_params("x0", x0)


def value_dtype(fun: Callable, has_aux: bool, x0: PyTree, args: Any) -> Any:
    """Check that ``fun`` returns a real scalar and return its dtype."""
    call_args = (x0,) if args is None else (x0, args)
    checks.check_scalar_output(
        "fun",
        fun,
        call_args,
        has_aux=has_aux,
        argnames=("x", "args")[: len(call_args)],
    )
    out = checks.shapes(fun, call_args)
    return (out[0] if has_aux else out).dtype


def bounds(lower: Any, upper: Any, x0: PyTree) -> tuple[PyTree, PyTree]:
    """``lower`` and ``upper`` as trees like ``x0``, checked."""
    lo = _bound("lower", lower, x0, -math.inf)
    hi = _bound("upper", upper, x0, math.inf)
    _check_box(lo, hi)
    return lo, hi


def _check_bound_leaf(name: str, b: Any) -> None:
    """A real number or array (``TypeError`` for strings, bytes, booleans,
    complex numbers and other objects)."""
    validate.check_number(name, b)
    if not (
        jnp.issubdtype(jnp.result_type(b), jnp.floating)
        or jnp.issubdtype(jnp.result_type(b), jnp.integer)
    ):
        raise TypeError(
            f"{name} must be a real number or an array of them, got dtype "
            f"{jnp.result_type(b)}: {b!r}."
        )


def _bound(name: str, bound: Any, x0: PyTree, fill: float) -> PyTree:
    """``bound`` as a tree like ``x0`` (a scalar applies to every element)."""
    if bound is None:
        return jax.tree.map(lambda x: jnp.full(x.shape, fill, x.dtype), x0)
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)) and not np.ndim(bound):
        _check_bound_leaf(name, bound)
        return jax.tree.map(
            lambda x: jnp.broadcast_to(jnp.asarray(bound, x.dtype), x.shape), x0
        )
    if jax.tree.structure(bound) != jax.tree.structure(x0):
        raise ValueError(
            f"{name} must be a number or a pytree with the structure of x0 "
            f"({jax.tree.structure(x0)}), got {jax.tree.structure(bound)}."
        )

    def leaf(path, b, x):
        _check_bound_leaf(f"{name}{jax.tree_util.keystr(path)}", b)
        if np.ndim(b) and np.shape(b) != x.shape:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {np.shape(b)}, but "
                f"x0{jax.tree_util.keystr(path)} has shape {x.shape}."
            )
        return jnp.broadcast_to(jnp.asarray(b, x.dtype), x.shape)

    return jax.tree_util.tree_map_with_path(leaf, bound, x0)


def _check_box(lo: PyTree, hi: PyTree) -> None:
    """Every concrete lower bound is below +inf, every upper bound above -inf,
    neither NaN, and lower <= upper."""
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(lo)[0], jax.tree.leaves(hi), strict=True
    ):
        if isinstance(a, Tracer) or isinstance(b, Tracer):
            continue
        a, b = np.asarray(a), np.asarray(b)
        where = jax.tree_util.keystr(path)
        for side, bound, wrong in (("lower", a, np.inf), ("upper", b, -np.inf)):
            if np.any(bound == wrong):
                raise ValueError(
                    f"{side}{where}={bound.tolist()} is not allowed: a bound of "
                    f"{wrong} leaves no feasible point; lower bounds must be "
                    "< +inf and upper bounds > -inf (-inf and +inf respectively "
                    "mean no bound)."
                )
        if np.any(a > b) or np.any(np.isnan(a)) or np.any(np.isnan(b)):
            raise ValueError(
                f"lower{where} and upper{where} are not ordered (lower {a.tolist()}, "
                f"upper {b.tolist()}): every lower bound must be <= its upper "
                "bound, and neither NaN."
            )
