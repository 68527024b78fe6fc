"""Pytree arithmetic shared by every layer, where ``optax.tree`` does not do it.

Everything ``optax.tree`` offers with the semantics we need (``sub``, ``cast``,
``zeros_like``, ``where``) is used from there. The
functions here differ on purpose: they keep each leaf's dtype (``tree_scale``,
the moment updates, the bias correction), treat complex leaves by their modulus
(``abs_sq``, moments of order 2), compute in the leaves' precision (at least
float32, float64 for float64 leaves), or take norms that do not overflow.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

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
    return jax.tree.map(lambda x: (scalar * x).astype(x.dtype), tree)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2`` that is real for complex ``x`` (``x * conj(x)``)."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x


def tree_update_moment(
    updates: PyTree, moments: PyTree, decay: jax.typing.ArrayLike, order: int
) -> PyTree:
    """Exponential moving average of ``updates**order`` (``|updates|**2`` for
    complex leaves when ``order == 2``): ``decay * m + (1 - decay) * g**order``."""

    def one(g, m):
        if g is None:
            return None
        g_pow = g if order == 1 else abs_sq(g) if order == 2 else g**order
        return (decay * m + (1 - decay) * g_pow).astype(m.dtype)

    return jax.tree.map(one, updates, moments, is_leaf=lambda x: x is None)


def tree_update_infinity_moment(
    updates: PyTree, moments: PyTree, decay: jax.typing.ArrayLike, eps: float
) -> PyTree:
    """``max(decay * m, |g| + eps)`` leafwise (the Adamax norm)."""
    return jax.tree.map(
        lambda g, m: jnp.maximum(decay * m, jnp.abs(g) + eps).astype(m.dtype),
        updates,
        moments,
    )


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
            corrections[dtype] = 1 - decay ** count.astype(dtype)
        return (m / corrections[dtype]).astype(m.dtype)

    return jax.tree.map(one, moments)


def compute_dtype(x: Any) -> Any:
    """The real floating dtype arithmetic on ``x`` runs in: its real dtype,
    but at least float32 (float32 for bfloat16 and float16)."""
    dtype = jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = jnp.finfo(dtype).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(jnp.float32)
    return jnp.promote_types(dtype, jnp.float32)


def tree_compute_dtype(tree: PyTree) -> Any:
    """The widest `compute_dtype` over the leaves (float32 for no leaves)."""
    dtypes = [compute_dtype(x) for x in jax.tree.leaves(tree)]
    return max(dtypes, key=lambda d: jnp.finfo(d).bits, default=jnp.dtype("float32"))


def tree_sum_squares(tree: PyTree) -> jax.Array:
    """Sum of ``|x|**2`` over all leaves, accumulated in float32 or wider (the
    widest `compute_dtype` of the leaves). It overflows for large leaves:
    norms should use `tree_global_norm`, which does not."""
    leaves = jax.tree.leaves(tree)
    zero = jnp.zeros((), tree_compute_dtype(tree))
    return sum(
        (jnp.sum(abs_sq(x), dtype=compute_dtype(x)) for x in leaves),
        zero,
    )


def tree_max_abs(tree: PyTree) -> jax.Array:
    """The largest ``|x|`` over all leaves (0 for an empty tree), in the widest
    `compute_dtype` of the leaves."""
    dtype = tree_compute_dtype(tree)
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), dtype)
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(dtype) for x in leaves]))


def tree_global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of all leaves taken together, as one vector.

    Overflow-safe: when the plain sum of squares overflows although every
    element is finite, the norm is recomputed from the leaves divided by their
    largest modulus (so a float32 gradient of ``1e19`` per element has a
    finite norm; that pass only runs then). Otherwise it is exactly
    ``sqrt(tree_sum_squares(tree))``; NaN or infinite elements give a NaN or
    infinite norm."""
    plain = jnp.sqrt(tree_sum_squares(tree))

    def rescaled():
        top = tree_max_abs(tree)
        safe = jnp.where((top > 0) & jnp.isfinite(top), top, 1)
        scaled = jax.tree.map(lambda x: x / safe.astype(compute_dtype(x)), tree)
        norm = (jnp.sqrt(tree_sum_squares(scaled)) * safe).astype(plain.dtype)
        return jnp.where(jnp.isfinite(top), norm, plain)

    return jax.lax.cond(jnp.isinf(plain), rescaled, lambda: plain)


def l2_norm(
    x: jax.Array, axis: Any = None, keepdims: bool = False, *, mean: bool = False
) -> jax.Array:
    """``sqrt(sum(|x|**2))`` over ``axis`` (``sqrt(mean(...))`` with ``mean``),
    overflow-safe like `tree_global_norm`: where the plain result overflows
    although the elements are finite, it is recomputed from ``x`` divided by
    its largest modulus along ``axis``; elsewhere it is the plain result."""
    reduce = jnp.mean if mean else jnp.sum
    plain = jnp.sqrt(reduce(abs_sq(x), axis=axis, keepdims=keepdims))
    top = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    safe = jnp.where((top > 0) & jnp.isfinite(top), top, 1)
    norm = jnp.sqrt(reduce(abs_sq(x / safe), axis=axis, keepdims=True)) * safe
    finite = jnp.isfinite(top)
    if not keepdims:
        norm, finite = norm.reshape(plain.shape), finite.reshape(plain.shape)
    return jnp.where(jnp.isinf(plain) & finite, norm.astype(plain.dtype), plain)


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Real inner product ``sum(real(conj(a) * b))`` over all leaves."""
    return sum(
        (
            jnp.vdot(x, y).real
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        ),
        jnp.zeros((), tree_compute_dtype(a)),
    )


def tree_all_finite(tree: PyTree) -> jax.Array:
    """A scalar bool: every element of every leaf is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.stack([jnp.isfinite(x).all() for x in leaves]).all()


def safe_norm(x: jax.Array, min_norm: jax.typing.ArrayLike) -> jax.Array:
    """``max(||x||_2, min_norm)`` over all elements of ``x``, with a finite
    gradient at ``x = 0`` (overflow-safe, see `l2_norm`)."""
    small = l2_norm(x) <= min_norm
    x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, min_norm, l2_norm(x))


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum: `optax.safe_increment`,
    typed as returning an array (optax annotates a generic number)."""
    return jnp.asarray(optax.safe_increment(count))
