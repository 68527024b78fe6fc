r"""`normalize`: divide the updates by their global norm (the ascent step of
`sam`)."""

from __future__ import annotations

import jax
import optax
import optax.contrib

from jaxopt_lite._core import tree_math
from jaxopt_lite._core.dtypes import div
from jaxopt_lite._core.recipe import recipe

NormalizeState = optax.contrib.NormalizeState
"""optax.contrib's name for ``optax.EmptyState``: ``normalize`` keeps no
state."""


@recipe
def normalize() -> optax.GradientTransformation:
    r"""Divide the updates by their global L2 norm.

    $$
    u \leftarrow \frac{g}{\lVert g \rVert_2}
    $$

    The norm is taken over all leaves together (without overflow or
    underflow, see `clip_by_global_norm`); a zero gradient gives NaN, as in
    optax.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.normalize()
        >>> t.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, t.init(None))[0]
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}

    References:
        Foret et al., *Sharpness-Aware Minimization for Efficiently Improving
        Generalization*, 2021.
    """

    def init_fn(params):
        del params
        return NormalizeState()

    def update_fn(updates, state, params=None):
        del params
        norm = tree_math.tree_global_norm(updates)
        return jax.tree.map(lambda g: div(g, norm).astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)
