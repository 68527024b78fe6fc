r"""COCOB: continuous coin betting, a learning-rate-free rescaling
(`scale_by_cocob`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import add, full_like, mul, sub, zeros_like
from jaxopt_lite._core.recipe import recipe

COCOBState = optax.contrib.COCOBState
"""optax.contrib's class itself (so states equal optax's as trees): the
starting point $\\theta_0$ (``init_particles``), and per coordinate: the
negated sum of gradients $C$, the largest gradient magnitude $L$ (``scale``),
the sum of magnitudes $G$ (``subgradients``) and the reward $R$."""


@recipe
def scale_by_cocob(
    alpha: float | jax.Array = 100.0, eps: float | jax.Array = 1e-8
) -> optax.GradientTransformation:
    r"""Rescale updates by COCOB-Backprop: bet a fraction of the wealth won so far.

    Per coordinate, with $L_0 = \epsilon$ and $C_0 = G_0 = R_0 = 0$:

    $$
    L_t = \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
    R_t = \max(R_{t-1} - g_t (\theta_{t-1} - \theta_0), 0), \quad
    C_t = C_{t-1} - g_t,
    $$

    $$
    u_t = \theta_0 - \theta_{t-1}
    + \frac{C_t}{L_t \max(G_t + L_t, \alpha L_t)} (L_t + R_t)
    $$

    so that $\theta_t = \theta_0 + \frac{C_t (L_t + R_t)}{L_t \max(G_t + L_t,
    \alpha L_t)}$: the parameters move from their start by a bet on the
    direction of the summed gradients, sized by the reward won so far.

    Args:
        alpha: $\alpha > 0$, which caps the bet while few gradients have been
            seen.
        eps: $\epsilon >= 0$, the initial $L$ (avoids dividing by zero).

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_cocob(alpha=4.0, eps=0.0)
        >>> p = jnp.array([1.0, 1.0])
        >>> t.update(jnp.array([2.0, -0.5]), t.init(p), p)[0]
        Array([-0.25,  0.25], dtype=float32)

    References:
        Orabona and Tommasi, *Training Deep Networks without Learning Rates
        Through Coin Betting*, 2017.
    """
    validate.check_positive("alpha", alpha)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        zeros = zeros_like(params)
        return COCOBState(params, zeros, full_like(params, eps), zeros, zeros)

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_cocob", params)
        start, c, big, total, reward = state  # (a TypeError if not a state)

        def like(s, x):  # in the state's dtype
            return x.astype(s.dtype)

        big = jax.tree.map(
            lambda s, g: jnp.maximum(s, like(s, jnp.abs(g))), big, updates
        )
        total = jax.tree.map(lambda s, g: like(s, add(s, jnp.abs(g))), total, updates)
        reward = jax.tree.map(
            lambda r, g, p, p0: like(r, jnp.maximum(sub(r, mul(g, sub(p, p0))), 0)),
            reward,
            updates,
            params,
            start,
        )
        c = jax.tree.map(lambda s, g: like(s, sub(s, g)), c, updates)

        def step(g, p, p0, c, big, total, reward):
            cap = jnp.maximum(total + big, like(big, mul(alpha, big)))
            return add(sub(p0, p), c / (big * cap) * (big + reward)).astype(g.dtype)

        new_updates = jax.tree.map(step, updates, params, start, c, big, total, reward)
        return new_updates, COCOBState(start, c, big, total, reward)

    return optax.GradientTransformation(init_fn, update_fn)
