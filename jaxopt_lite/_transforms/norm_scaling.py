r"""Stateless scalings by a norm: `normalize_by_update_norm` divides all
updates by their global norm, `scale_by_param_block_norm` multiplies each
parameter array's updates by that array's norm.

Norms are overflow- and underflow-safe and taken in float32 or wider
(`_core.tree_math`); updates come back in the gradients' dtype.
"""

from __future__ import annotations

import jax
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul
from jaxopt_lite._core.recipe import recipe


@recipe
def normalize_by_update_norm(
    scale_factor: float | jax.Array = 1.0, eps: float | jax.Array = 1e-6
) -> optax.GradientTransformation:
    r"""Divide the updates by their global norm (all leaves together).

    $$
    u \leftarrow \frac{s}{\lVert g \rVert + \epsilon} \, g
    $$

    so every step has length $s$ (up to $\epsilon$), whatever the size of the
    gradient: normalized gradient descent with ``scale_factor=-lr``.

    Args:
        scale_factor: $s$, a finite number (negative to descend without a
            learning-rate transform).
        eps: $\epsilon >= 0$, added to the norm.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.normalize_by_update_norm(eps=0.0)
        >>> t.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, t.init(None))[0]
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    validate.check_range("scale_factor", scale_factor)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        denominator = div(add(tree_math.tree_global_norm(updates), eps), scale_factor)
        new_updates = jax.tree.map(
            lambda g: div(g, denominator).astype(g.dtype), updates
        )
        return new_updates, state

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_param_block_norm(
    min_scale: float | jax.Array = 1e-3,
) -> optax.GradientTransformation:
    r"""Multiply each leaf of the updates by the L2 norm of its parameters.

    $$
    u \leftarrow g \cdot \max\left(\lVert w \rVert, s_{\min}\right)
    $$

    with $w$ the parameter array (a layer's weight vector or matrix) the
    leaf belongs to, so steps are relative to each block's size. Compare
    `scale_by_param_block_rms`, which uses the root mean square.

    Args:
        min_scale: the floor $s_{\min}$ of the factor, a finite number >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_param_block_norm()
        >>> params = jnp.array([3.0, -4.0])
        >>> t.update(jnp.array([1.0, 2.0]), t.init(params), params)[0]
        Array([ 5., 10.], dtype=float32)
    """
    validate.check_nonnegative("min_scale", min_scale)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_param_block_norm", params)
        new_updates = jax.tree.map(
            lambda g, p: mul(g, tree_math.safe_norm(p, min_scale)).astype(g.dtype),
            updates,
            params,
        )
        return new_updates, state

    return optax.GradientTransformation(init_fn, update_fn)
