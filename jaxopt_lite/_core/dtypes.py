"""Dtype helpers shared by every layer: real parts of complex dtypes, filled and
cast copies of trees."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._core.tree import PyTree


def real_dtype(x: jax.Array) -> Any:
    """The real dtype matching ``x`` (``float32`` for ``complex64``); ``x`` may
    be abstract (a ``jax.ShapeDtypeStruct``)."""
    dtype = jnp.result_type(x)
    return (
        jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype
    )


def state_dtype(x: Any, dtype: Any = None, *, real: bool = False) -> Any:
    """The dtype of an optimizer-state buffer for parameter leaf ``x``:
    ``dtype`` when given, else ``x``'s (its real dtype with ``real``).
    ``TypeError`` for an integer or boolean result: such a buffer would round
    every moment to an integer (optax keeps integer buffers too and silently
    returns wrong updates: docs/optax-differences.md)."""
    if dtype is None:
        dtype = real_dtype(x) if real else jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(
            f"A parameter leaf of dtype {jnp.dtype(dtype).name} (shape "
            f"{jnp.shape(x)}) cannot be optimized: its optimizer state would hold "
            "integers. Give floating-point parameters, or leave such leaves out "
            "with jaxopt_lite.masked or jaxopt_lite.partition."
        )
    return dtype


def real_full_like(tree: _tree.PyTree, fill_value: Any) -> _tree.PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value``, in each leaf's real
    dtype (second moments of complex parameters are real); see `state_dtype`."""
    return jax.tree.map(
        lambda x: jnp.full(jnp.shape(x), fill_value, state_dtype(x, real=True)), tree
    )


def full_like(tree: _tree.PyTree, fill_value: Any, dtype: Any = None) -> _tree.PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value`` (leaf dtypes kept
    unless ``dtype`` is given; see `state_dtype`)."""
    return jax.tree.map(
        lambda x: jnp.full(jnp.shape(x), fill_value, state_dtype(x, dtype)), tree
    )


def zeros_like(tree: _tree.PyTree, dtype: Any = None) -> _tree.PyTree:
    """``full_like(tree, 0, dtype)``: zero state buffers (see `state_dtype`)."""
    return full_like(tree, 0, dtype)


def cast_like(tree: _tree.PyTree, like: _tree.PyTree) -> _tree.PyTree:
    """Cast every leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(
        lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), tree, like
    )


def real_float_dtype(tree: PyTree, which: str = "highest") -> Any:
    """The highest (or lowest) real floating dtype among the leaves of ``tree``
    (complex leaves count as their real part); float32 when there is none."""
    dtypes = []
    for leaf in jax.tree.leaves(tree):
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.finfo(dtype).dtype
        if jnp.issubdtype(dtype, jnp.floating):
            dtypes.append(jnp.dtype(dtype))
    if not dtypes:
        return jnp.dtype(jnp.float32)
    pick = max if which == "highest" else min
    return pick(dtypes, key=lambda d: jnp.finfo(d).bits)


def metric_dtype(tree: PyTree) -> np.dtype:
    """The dtype losses, metrics and histories are kept in for parameters
    ``tree``: their highest real floating precision, at least float32 (float32
    for bfloat16 or float32 parameters, float64 for float64 ones under x64)."""
    return np.dtype(jnp.promote_types(real_float_dtype(tree), jnp.float32))
