"""The checks of `minimize`'s arguments, made cheap for repeated calls.

A solver is often called many times with the same settings (a loop over data
sets, an outer optimization): the settings that are hashable are checked
once per combination, ``x0`` skips its full check when it is already a tree
of strongly typed floating-point JAX arrays, and the output check of ``fun``
runs once per function and input shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxopt_lite._core import validate as v
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import programs as _programs

PyTree = Any
DIFF = ("implicit", "unroll")
_MAX_REMEMBERED = 256
_checked_settings: set[tuple] = set()
_tolerance_arrays: dict[tuple, Any] = {}


def check_settings(
    steps: Any, tol: Any, rtol: Any, atol: Any, has_aux: Any, diff: Any,
    history_size: Any,
) -> None:  # fmt: skip
    """Check the scalar settings (once per combination of hashable values)."""
    given = (steps, tol, rtol, atol, has_aux, diff, history_size)
    try:
        key: tuple | None = tuple((type(a), a) for a in given)
        hash(key)
    except TypeError:  # arrays, tracers
        key = None
    if key is not None and key in _checked_settings:
        return
    v.check_count("steps", steps)
    v.check_bool("has_aux", has_aux)
    for name, value in (("tol", tol), ("rtol", rtol), ("atol", atol)):
        _check_tolerance(name, value)
    v.check_choice("diff", diff, DIFF)
    v.check_count("history_size", history_size, minimum=0)
    if key is not None:
        if len(_checked_settings) >= _MAX_REMEMBERED:
            _checked_settings.clear()
        _checked_settings.add(key)


def _check_tolerance(name: str, value: Any) -> None:
    """``None`` or a finite scalar >= 0 (a tracer too: its shape is checked)."""
    if value is None:
        return
    v.check_nonnegative(name, value)
    if np.ndim(value) != 0:
        raise TypeError(
            f"{name} must be a scalar (a number or a 0-d array), got an array of "
            f"shape {np.shape(value)}."
        )


def tolerances(tol: Any, rtol: Any, atol: Any, dtype: Any) -> tuple:
    """The three thresholds as arrays of ``dtype`` (``tol`` 0 when not given:
    an exactly zero gradient converges; ``rtol``, ``atol`` 0). Concrete values
    are converted once and the arrays kept, so a repeated call transfers
    nothing; tracers stay tracers."""
    given = tuple(0.0 if t is None else t for t in (tol, rtol, atol))
    if any(isinstance(t, Tracer) for t in given):
        return tuple(jnp.asarray(t, dtype) for t in given)
    try:
        key: tuple | None = (np.dtype(dtype), *((type(t), t) for t in given))
        found = _tolerance_arrays.get(key)  # type: ignore[arg-type]
    except TypeError:  # arrays
        key, found = None, None
    if found is None:
        found = tuple(jnp.asarray(np.asarray(t, dtype)) for t in given)
        if key is not None:
            if len(_tolerance_arrays) >= _MAX_REMEMBERED:
                _tolerance_arrays.clear()
            _tolerance_arrays[key] = found
    return found


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
    return _checks.check_params("x0", x0)


def value_dtype(
    fun: Callable, fun_key: tuple, fun_inputs: list, has_aux: bool, x0: PyTree,
    args: Any,
) -> Any:  # fmt: skip
    """Check that ``fun`` returns a real scalar (once per function and input
    shapes; ``fun_key`` and ``fun_inputs`` from `programs.split_callable`) and
    return its dtype."""
    call_args = (x0,) if args is None else (x0, args)

    def check():
        _checks.check_scalar_output(
            "fun",
            fun,
            call_args,
            has_aux=has_aux,
            argnames=("x", "args")[: len(call_args)],
        )
        out = jax.eval_shape(fun, *call_args)
        return (out[0] if has_aux else out).dtype

    key = ("minimize", has_aux, fun_key, _programs.shapes(fun_inputs))
    return _programs.checked((*key, _programs.shapes(call_args)), check)


def bounds(lower: Any, upper: Any, x0: PyTree) -> tuple[PyTree, PyTree]:
    """``lower`` and ``upper`` as trees like ``x0``, checked."""
    lo = _bound("lower", lower, x0, -math.inf)
    hi = _bound("upper", upper, x0, math.inf)
    _check_box(lo, hi)
    return lo, hi


def _check_bound_leaf(name: str, b: Any) -> None:
    """A real number or array (``TypeError`` for strings, bytes, booleans,
    complex numbers and other objects)."""
    v.check_number(name, b)
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
