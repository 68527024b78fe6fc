"""Argument checks shared by the drivers (layer 3), run before any tracing."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any


def check_callable(name: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}.")


def check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation (for example "
            f"jaxopt_lite.adam(1e-3)), got {type(optimizer).__name__}: {optimizer!r}."
        )


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}.")
    if value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed: it must be >= 1.")


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float, complex))


def check_params(name: str, params: PyTree) -> PyTree:
    """Params as a tree of JAX arrays; every leaf must be floating or complex."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError(f"{name} has no array leaves: there is nothing to optimize.")
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(leaf, bool) or not _is_array(leaf) and not isinstance(
            leaf, numbers.Number
        ):
            raise TypeError(
                f"{where} is a {type(leaf).__name__}, not an array: every leaf of "
                f"{name} must be a floating-point array."
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{where} has dtype {dtype}: only floating-point or complex arrays "
                f"can be differentiated. Keep integer state out of {name} (close "
                "over it, or split it off with equinox.partition)."
            )
    return jax.tree.map(jnp.asarray, params)


def _describe(shape: Any) -> str:
    return f"an array of shape {tuple(shape.shape)} and dtype {shape.dtype}"


def check_scalar_output(
    name: str, fun: Callable, args: tuple, *, has_aux: bool
) -> Any:
    """Trace ``fun(*args)`` abstractly; it must return a real scalar (and, with
    ``has_aux``, a pair ``(scalar, aux)``). Returns the abstract aux."""
    out = jax.eval_shape(fun, *args)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"{name} was called with has_aux=True, so it must return a pair "
                f"(loss, aux); it returned {out!r}."
            )
        out, aux = out
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(f"{name} must return a scalar loss, got {out!r}.")
    if out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
        hint = " (did you forget has_aux=True?)" if isinstance(out, tuple) else ""
        raise TypeError(
            f"{name} must return a real floating-point scalar, but it returned "
            f"{_describe(out)}{hint}. Reduce it, e.g. with jnp.mean."
        )
    return aux
