"""`keep_params_nonnegative`: updates that keep the parameters >= 0."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import add
from jaxopt_lite._core.recipe import recipe

# optax's class itself (its name for ``optax.EmptyState``).
NonNegativeParamsState = optax.NonNegativeParamsState


@recipe
def keep_params_nonnegative() -> optax.GradientTransformation:
    r"""Shorten the updates that would make a parameter negative, to reach 0.

    $$
    u_i \leftarrow \begin{cases} -\theta_i & \theta_i + g_i < 0 \\
    g_i & \text{otherwise} \end{cases}
    $$

    Make it the last transform of a chain, so that the parameters after
    ``optax.apply_updates`` are $\geq 0$ (exactly 0 where they would have
    gone below). A negative parameter is moved to 0 by the next update that
    would not make it positive, as in ``optax.keep_params_nonnegative``.
    ``update`` needs ``params`` (a required argument, as in optax; ``None``
    is a ``ValueError``); real leaves only.

    Returns:
        An ``optax.GradientTransformation`` whose state is a
        ``optax.NonNegativeParamsState`` (empty).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.keep_params_nonnegative()
        >>> params = jnp.array([1.0, 2.0])
        >>> t.update(jnp.array([-3.0, -1.0]), t.init(params), params)[0]
        Array([-1., -1.], dtype=float32)
    """

    def init_fn(params):
        del params
        return NonNegativeParamsState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("keep_params_nonnegative", params)
        updates = jax.tree.map(
            lambda p, g: (
                None if p is None else jnp.where(add(p, g) < 0, (-p).astype(g.dtype), g)
            ),
            params,
            updates,
            is_leaf=lambda x: x is None,
        )
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)
