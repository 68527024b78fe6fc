"""Dtype helpers shared by every layer: real parts of complex dtypes, the
precision arithmetic runs in, and filled and cast copies of trees."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


def promoted_dtype(*xs: Any) -> np.dtype:
    """The dtype JAX's standard promotion gives ``xs`` (values or dtypes;
    Python numbers weakly typed), whatever ``jax_numpy_dtype_promotion``
    says."""
    with jax.numpy_dtype_promotion("standard"):
        return np.dtype(jnp.result_type(*xs))


def promote(*xs: Any) -> tuple[Any, ...]:
    """``xs`` with every array cast to their `promoted_dtype`; Python numbers
    are left as they are (weakly typed, they take that dtype by themselves).
    Layer 1 mixes dtypes only through this (and `add`, `sub`, `mul`, `div`),
    on purpose and visibly, so it computes the same numbers under
    ``jax_numpy_dtype_promotion="strict"`` as under the default, which
    promotes the same way implicitly. A ``None`` (a leaf optax lets through
    where it does no arithmetic) is a ``TypeError``, as with ``+``."""
    if any(x is None for x in xs):
        raise TypeError("unsupported operand None: arithmetic needs arrays")
    dtype = promoted_dtype(*xs)
    return tuple(
        x if isinstance(x, (int, float, complex)) else jnp.asarray(x).astype(dtype)
        for x in xs
    )


def add(a: Any, b: Any) -> Any:
    """``a + b`` after `promote`."""
    a, b = promote(a, b)
    return a + b


def sub(a: Any, b: Any) -> Any:
    """``a - b`` after `promote`."""
    a, b = promote(a, b)
    return a - b


def mul(a: Any, b: Any) -> Any:
    """``a * b`` after `promote`."""
    a, b = promote(a, b)
    return a * b


def div(a: Any, b: Any) -> Any:
    """``a / b`` after `promote`."""
    a, b = promote(a, b)
    return a / b


def real_dtype(x: Any) -> Any:
    """The real dtype matching ``x`` (``float32`` for ``complex64``; other
    dtypes are kept). ``x`` may be a value, a dtype or abstract (a
    ``jax.ShapeDtypeStruct``)."""
    dtype = jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.finfo(dtype).dtype
    return dtype


def at_least_float32(x: Any) -> Any:
    """The dtype of ``x`` (a value or a dtype) promoted with float32, as
    arithmetic with a float32 array would promote it: float32 for bfloat16,
    float16, integers and bools; floating and complex dtypes of 32 bits or
    more are kept."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.inexact) or jnp.finfo(dtype).bits < 32:
        return jnp.dtype(jnp.float32)
    return jnp.dtype(dtype)


def compute_dtype(x: Any) -> Any:
    """The real floating dtype arithmetic on ``x`` (a value or a dtype) runs
    in: the `real_dtype` of `at_least_float32` (float32 for bfloat16, float16,
    complex64 and non-floating ``x``, float64 for float64 and complex128)."""
    return real_dtype(at_least_float32(x))


def tree_compute_dtype(tree: PyTree) -> Any:
    """The widest `compute_dtype` over the leaves of ``tree`` (JAX's default
    float dtype when it has none: float32, float64 under x64, as for the
    Python floats of a hyper-parameter): the precision of hyper-parameters,
    norms and counters derived from parameters ``tree``."""
    dtypes = [compute_dtype(x) for x in jax.tree.leaves(tree)]
    default = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))
    return max(dtypes, key=lambda d: jnp.finfo(d).bits, default=default)


def metric_dtype(tree: PyTree) -> np.dtype:
    """The dtype losses, metrics and histories are kept in for parameters
    ``tree``: their `tree_compute_dtype` (float32 for bfloat16 or float32
    parameters, float64 for float64 ones under x64)."""
    return np.dtype(tree_compute_dtype(tree))


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


def real_full_like(tree: PyTree, fill_value: Any, dtype: Any = None) -> PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value``, in each leaf's real
    dtype (second moments of complex parameters are real) unless ``dtype`` is
    given; see `state_dtype` and, for shardings, `full_like`."""
    return jax.tree.map(
        lambda x: jnp.full_like(x, fill_value, state_dtype(x, dtype, real=True)),
        tree,
    )


def full_like(tree: PyTree, fill_value: Any, dtype: Any = None) -> PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value`` (leaf dtypes kept
    unless ``dtype`` is given; see `state_dtype`). A sharded leaf gives an
    array with the same sharding (``jnp.full_like``), so optimizer states of
    sharded parameters are sharded like them; leaves may also be
    ``jax.ShapeDtypeStruct`` or Python numbers."""
    return jax.tree.map(
        lambda x: jnp.full_like(x, fill_value, state_dtype(x, dtype)), tree
    )


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """``full_like(tree, 0, dtype)``: zero state buffers (see `state_dtype`)."""
    return full_like(tree, 0, dtype)


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Cast every leaf of ``tree`` to the dtype of the matching leaf of ``like``
    (``None`` leaves of ``tree``, updates optax lets through, stay ``None``)."""
    return jax.tree.map(
        lambda x, y: None if x is None else jnp.asarray(x).astype(jnp.result_type(y)),
        tree,
        like,
        is_leaf=lambda x: x is None,
    )
