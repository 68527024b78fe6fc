"""Pytree arithmetic shared by every layer, where ``optax.tree`` does not do it.

Everything ``optax.tree`` offers with the semantics we need (``sub``, ``cast``,
``zeros_like``, ``where``, ``optax.safe_increment``) is used from there. The
functions here differ on purpose: they keep each leaf's dtype (``tree_scale``,
the moment updates, the bias correction), treat complex leaves by their modulus
(``abs_sq``, moments of order 2), or accumulate norms in at least float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


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
    """Divide each moment by ``1 - decay**count`` (Adam's bias correction)."""
    correction = 1 - decay ** count.astype(jnp.float32)
    return jax.tree.map(lambda m: (m / correction).astype(m.dtype), moments)


def tree_sum_squares(tree: PyTree) -> jax.Array:
    """Sum of ``|x|**2`` over all leaves, accumulated in float32 or wider."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return sum(
        (
            jnp.sum(abs_sq(x), dtype=jnp.promote_types(abs_sq(x).dtype, jnp.float32))
            for x in leaves
        ),
        jnp.zeros((), jnp.float32),
    )


def tree_global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of all leaves taken together, as one vector."""
    return jnp.sqrt(tree_sum_squares(tree))


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Real inner product ``sum(real(conj(a) * b))`` over all leaves."""
    return sum(
        (
            jnp.vdot(x, y).real
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        ),
        jnp.zeros((), jnp.float32),
    )


def tree_all_finite(tree: PyTree) -> jax.Array:
    """A scalar bool: every element of every leaf is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.stack([jnp.isfinite(x).all() for x in leaves]).all()


def safe_norm(x: jax.Array, min_norm: jax.typing.ArrayLike) -> jax.Array:
    """``max(||x||_2, min_norm)`` over all elements of ``x``, with a finite
    gradient at ``x = 0``."""
    small = jnp.sqrt(jnp.sum(abs_sq(x))) <= min_norm
    x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, min_norm, jnp.sqrt(jnp.sum(abs_sq(x))))
