"""`flatten`: an inner transform run on all the leaves joined into one vector."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core.dtypes import promoted_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_transform

PyTree = Any


def _flat(tree: PyTree) -> jax.Array:
    """The leaves of ``tree`` raveled and concatenated, in their promoted
    dtype (float32 for an empty tree)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([0], jnp.float32)
    dtype = promoted_dtype(*leaves)
    return jnp.concatenate([jnp.ravel(x).astype(dtype) for x in leaves])


def _unflat(flat: Any, like: PyTree) -> PyTree:
    """``flat`` cut into the leaves of ``like``: their shapes and dtypes."""
    leaves, structure = jax.tree.flatten(like)
    out, start = [], 0
    for x in leaves:
        size = math.prod(jnp.shape(x))
        piece = flat[start : start + size]
        out.append(piece.reshape(jnp.shape(x)).astype(jnp.result_type(x)))
        start += size
    return jax.tree.unflatten(structure, out)


@recipe
def flatten(
    inner: optax.GradientTransformation,
) -> optax.GradientTransformationExtraArgs:
    r"""Run ``inner`` on one vector holding every leaf of the updates.

    $$
    u \leftarrow \operatorname{unravel}\big(T(\operatorname{ravel}(g))\big)
    $$

    The leaves are raveled and concatenated (parameters too, when given),
    so ``inner`` sees and keeps its state for a single array: fewer, larger
    operations, which is faster for models of many small leaves, at the
    cost of copies. The numbers are ``inner``'s on the whole vector, as with
    ``optax.flatten``; for leaves of mixed dtypes the vector has their
    promoted dtype and each update comes back in its own leaf's dtype
    (optax returns them all in the promoted dtype).

    Args:
        inner: the transform to run on the flattened vector (extra keyword
            arguments such as ``value=`` reach it).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; its state is ``inner``'s
        state for the flattened parameters.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = {"a": jnp.zeros(2), "b": jnp.zeros((1, 1))}
        >>> opt = jol.flatten(jol.clip_by_global_norm(1.0))
        >>> grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
        >>> updates, _ = opt.update(grads, opt.init(params))
        >>> updates["a"], updates["b"]
        (Array([0.6, 0. ], dtype=float32), Array([[0.8]], dtype=float32))
    """
    check_transform("inner", inner)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return inner.init(_flat(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _flat(params)
        flat_updates, state = inner.update(
            _flat(updates), state, flat_params, **extra_args
        )
        return _unflat(flat_updates, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
