"""Pytree arithmetic shared by every layer, where ``optax.tree`` does not do it.

Everything ``optax.tree`` offers with the semantics we need (``sub``, ``cast``,
``zeros_like``, ``where``) is used from there. The
functions here differ on purpose: they keep each leaf's dtype (``tree_scale``,
the moment updates, the bias correction), treat complex leaves by their modulus
(``abs_sq``, moments of order 2), compute in the leaves' precision (at least
float32, float64 for float64 leaves: `compute_dtype`), or take norms that
neither overflow nor underflow.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core.dtypes import (
    add,
    at_least_float32,
    compute_dtype,
    div,
    mul,
    promote,
    real_dtype,
    tree_compute_dtype,
)

PyTree = Any


def as_arrays(tree: PyTree) -> PyTree:
    """Python numbers among the leaves become (weakly typed) JAX arrays, so
    every leaf has a ``dtype`` and a ``shape``; other leaves are kept."""

    def one(x):
        if isinstance(x, (int, float, complex)) and not isinstance(x, bool):
            return jnp.asarray(x)
        return x

    return jax.tree.map(one, tree)


def tree_scale(scalar: jax.typing.ArrayLike, tree: PyTree) -> PyTree:
    """Multiply every leaf by ``scalar``, keeping the leaf's dtype."""
    return jax.tree.map(lambda x: mul(scalar, x).astype(x.dtype), tree)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2`` that is real for complex ``x`` (``x * conj(x)``)."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x


def ema(decay: jax.typing.ArrayLike, average: Any, x: Any) -> jax.Array:
    """``decay * average + (1 - decay) * x`` (each product in its factors'
    promoted dtype, the sum in theirs), not cast back."""
    return add(mul(decay, average), mul(1 - decay, x))


def tree_update_moment(
    updates: PyTree, moments: PyTree, decay: jax.typing.ArrayLike, order: int
) -> PyTree:
    """Exponential moving average of ``updates**order`` (``|updates|**2`` for
    complex leaves when ``order == 2``): ``decay * m + (1 - decay) * g**order``."""

    def one(g, m):
        if g is None:
            return None
        g_pow = g if order == 1 else abs_sq(g) if order == 2 else g**order
        return ema(decay, m, g_pow).astype(m.dtype)

    return jax.tree.map(one, updates, moments, is_leaf=lambda x: x is None)


def tree_update_infinity_moment(
    updates: PyTree, moments: PyTree, decay: jax.typing.ArrayLike, eps: float
) -> PyTree:
    """``max(decay * m, |g| + eps)`` leafwise (the Adamax norm); ``None``
    updates give ``None``, as in `tree_update_moment`."""

    def one(g, m):
        if g is None:
            return None
        return jnp.maximum(*promote(mul(decay, m), add(jnp.abs(g), eps))).astype(
            m.dtype
        )

    return jax.tree.map(one, updates, moments, is_leaf=lambda x: x is None)


def decay_power(decay: Any, count: jax.Array, dtype: Any) -> jax.Array:
    """``decay ** count`` in ``dtype`` with the integer ``count`` as the exponent
    (``lax.pow``, optax's ``decay**count``): where ``1 - decay**count``
    cancels (``decay`` near 1), a float exponent's different rounding shows."""
    return jax.lax.pow(jnp.asarray(decay, dtype), count)


def tree_bias_correction(
    moments: PyTree, decay: jax.typing.ArrayLike, count: jax.Array
) -> PyTree:
    """Divide each moment by ``1 - decay**count`` (Adam's bias correction),
    computed in the moment's precision (float32 for float32, bfloat16 and
    complex64 moments, float64 for float64 ones)."""
    corrections = {}

    def one(m):
        dtype = compute_dtype(m)
        if dtype not in corrections:
            corrections[dtype] = 1 - jnp.power(*promote(decay, count.astype(dtype)))
        return div(m, corrections[dtype]).astype(m.dtype)

    return jax.tree.map(one, moments)


def tree_sum_squares(tree: PyTree) -> jax.Array:
    """Sum of ``|x|**2`` over all leaves, accumulated in float32 or wider (the
    widest `compute_dtype` of the leaves). It overflows for large leaves:
    norms should use `tree_global_norm`, which does not."""
    leaves = jax.tree.leaves(tree)
    total = jnp.zeros((), tree_compute_dtype(tree))
    for x in leaves:
        total = total + jnp.sum(abs_sq(x), dtype=compute_dtype(x)).astype(total.dtype)
    return total


def _contract(x: jax.Array, y: jax.Array) -> jax.Array:
    """``sum(x * y)`` as one full contraction (XLA's dot at the highest
    precision, optax's way of summing), replicated on a mesh of explicit
    axes."""
    mesh = jax.typeof(x).sharding.mesh
    replicated = None
    if mesh.are_all_axes_explicit:
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jnp.tensordot(
        x, y, x.ndim, precision=jax.lax.Precision.HIGHEST, out_sharding=replicated
    )


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    r"""The real inner product $\sum \operatorname{Re}(\bar a b)$ over all pairs
    of leaves, each leaf's sum computed in float32 or wider and the total in the
    widest `compute_dtype` of the leaves: ``optax.tree.vdot`` sums bfloat16
    leaves in bfloat16 and mixes the leaves' dtypes implicitly."""
    total = jnp.zeros((), tree_compute_dtype([a, b]))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = (jnp.asarray(z).astype(at_least_float32(z)) for z in (x, y))
        x, y = promote(jnp.conj(x), y)
        total = total + _contract(x, y).real.astype(total.dtype)
    return total


def tree_max_abs(tree: PyTree) -> jax.Array:
    """The largest ``|x|`` over all leaves (0 for an empty tree), in the widest
    `compute_dtype` of the leaves."""
    dtype = tree_compute_dtype(tree)
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), dtype)
    maxima = [jnp.max(jnp.abs(x), initial=0).astype(dtype) for x in leaves]
    return jnp.max(jnp.stack(maxima))


def _flush_floor(squared: list[tuple[Any, int]], accumulate: Any) -> float:
    """The norm below which a plain norm may have lost precision to squares
    that flush to zero: ``squared`` lists (the dtype the squares are taken in,
    how many of them), ``accumulate`` is the dtype they are summed in. Each
    lost square is below its dtype's smallest normal number ``tiny``, so the
    plain result is exact to rounding when its square exceeds
    ``sum(count * tiny) / eps``."""
    lost = 0.0
    for dtype, count in squared:
        dtype = real_dtype(dtype)
        if jnp.issubdtype(dtype, jnp.floating):
            lost += count * float(jnp.finfo(dtype).tiny)
    return math.sqrt(lost / float(jnp.finfo(accumulate).eps))


def tree_global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of all leaves taken together, as one vector.

    Overflow- and underflow-safe: when the plain sum of squares overflows
    although every element is finite, or is so small that squares flushed to
    zero may have changed it (a float32 gradient of ``1e19``, or of
    ``1e-25``, per element), the norm is recomputed from the leaves divided
    by their largest modulus (that pass only runs then). Otherwise it is
    exactly ``sqrt(tree_sum_squares(tree))``; NaN or infinite elements give a
    NaN or infinite norm."""
    leaves = jax.tree.leaves(tree)
    plain = jnp.sqrt(tree_sum_squares(tree))
    floor = _flush_floor([(x, math.prod(jnp.shape(x))) for x in leaves], plain.dtype)

    def rescaled():
        top = tree_max_abs(tree)
        safe = jnp.where((top > 0) & jnp.isfinite(top), top, 1)
        scaled = jax.tree.map(lambda x: div(x, safe.astype(compute_dtype(x))), tree)
        norm = (jnp.sqrt(tree_sum_squares(scaled)) * safe).astype(plain.dtype)
        return jnp.where(jnp.isfinite(top), norm, plain)

    unsafe = jnp.isinf(plain) | (plain < floor)
    return jax.lax.cond(unsafe, rescaled, lambda: plain)


def l2_norm(
    x: jax.Array, axis: Any = None, keepdims: bool = False, *, mean: bool = False
) -> jax.Array:
    """``sqrt(sum(|x|**2))`` over ``axis`` (``sqrt(mean(...))`` with ``mean``),
    overflow- and underflow-safe like `tree_global_norm`: where the plain
    result overflows although the elements are finite, or is small enough
    for flushed squares to matter, it is recomputed from ``x`` divided by its
    largest modulus along ``axis``; elsewhere it is the plain result."""
    reduce = jnp.mean if mean else jnp.sum
    plain = jnp.sqrt(reduce(abs_sq(x), axis=axis, keepdims=keepdims))
    top = jnp.max(jnp.abs(x), axis=axis, keepdims=True, initial=0)
    safe = jnp.where((top > 0) & jnp.isfinite(top), top, 1)
    norm = jnp.sqrt(reduce(abs_sq(div(x, safe)), axis=axis, keepdims=True)) * safe
    finite = jnp.isfinite(top)
    if not keepdims:
        norm, finite = norm.reshape(plain.shape), finite.reshape(plain.shape)
    axes = range(jnp.ndim(x)) if axis is None else np.atleast_1d(axis)
    count = 1 if mean else math.prod(jnp.shape(x)[a] for a in axes)
    unsafe = jnp.isinf(plain) | (plain < _flush_floor([(x, count)], plain.dtype))
    return jnp.where(unsafe & finite, norm.astype(plain.dtype), plain)


def tree_all_finite(tree: PyTree) -> jax.Array:
    """A scalar bool: every element of every leaf is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.stack([jnp.isfinite(x).all() for x in leaves]).all()


def safe_norm(x: jax.Array, min_norm: jax.typing.ArrayLike) -> jax.Array:
    """``max(||x||_2, min_norm)`` over all elements of ``x``, with a finite
    gradient at ``x = 0`` (overflow- and underflow-safe, see `l2_norm`)."""
    small = jnp.less_equal(*promote(l2_norm(x), min_norm))
    x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, *promote(min_norm, l2_norm(x)))


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum: `optax.safe_increment`,
    typed as returning an array (optax annotates a generic number)."""
    return jnp.asarray(optax.safe_increment(count))
