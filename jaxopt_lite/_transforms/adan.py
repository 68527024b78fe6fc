r"""Adan's rescaling (`scale_by_adan`): moments of the gradient, of its change
between steps, and of their Nesterov-style combination.

The first moment $m$, the moment of the differences $v$ and the previous
gradient are kept in the parameters' dtype; the second moment $n$, built from
$|\cdot|^2$, in the matching real dtype, so complex parameters work. Updates
come back in the gradients' dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, real_full_like, sub, zeros_like
from jaxopt_lite._core.recipe import recipe

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByAdanState = optax.ScaleByAdanState


@recipe
def scale_by_adan(
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Rescale updates by Adan's adaptive Nesterov momentum.

    $$
    \begin{aligned}
    d_t &= g_t - g_{t-1} \;(d_1 = 0), &
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2) d_t, &
    n_t &= \beta_3 n_{t-1} + (1-\beta_3) |g_t + (1-\beta_2) d_t|^2, \\
    u_t &= \frac{\hat m_t + (1-\beta_2) \hat v_t}{\sqrt{\hat n_t + \epsilon_r}
        + \epsilon}
    \end{aligned}
    $$

    where hats divide by $1 - \beta^t$ with the moment's own decay. Adding
    $(1-\beta_2)$ times the gradient's change estimates the gradient at a
    look-ahead point without evaluating it there.

    Args:
        b1: $\beta_1$, the decay of the gradients' average, in $[0, 1)$.
        b2: $\beta_2$, the decay of the differences' average, in $[0, 1)$.
        b3: $\beta_3$, the decay of the second moment, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_adan(b1=0.5, b3=0.75, eps=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Xie, Zhou, Li, Lin and Yan, *Adan: Adaptive Nesterov Momentum
        Algorithm for Faster Optimizing Deep Models*, 2022.
    """
    for name, decay in (("b1", b1), ("b2", b2), ("b3", b3)):
        validate.check_decay(name, decay)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("eps_root", eps_root)

    def init_fn(params):
        zeros = zeros_like(params)
        return ScaleByAdanState(
            m=zeros,
            v=zeros,
            n=real_full_like(params, 0.0),
            g=zeros,
            t=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None):
        del params
        first = state.t == 0
        diff = jax.tree.map(
            lambda g, prev: jnp.where(
                first, jnp.zeros_like(g), sub(g, prev).astype(g.dtype)
            ),
            updates,
            state.g,
        )
        m = tree_math.tree_update_moment(updates, state.m, b1, 1)
        diff_avg = tree_math.tree_update_moment(diff, state.v, b2, 1)
        ahead = jax.tree.map(lambda g, d: add(g, mul(1 - b2, d)), updates, diff)
        n = tree_math.tree_update_moment(ahead, state.n, b3, 2)
        t = tree_math.safe_increment(state.t)
        m_hat = tree_math.tree_bias_correction(m, b1, t)
        v_hat = tree_math.tree_bias_correction(diff_avg, b2, t)
        n_hat = tree_math.tree_bias_correction(n, b3, t)
        new_updates = jax.tree.map(
            lambda g, mh, vh, nh: div(
                add(mh, mul(1 - b2, vh)), add(jnp.sqrt(add(nh, eps_root)), eps)
            ).astype(g.dtype),
            updates,
            m_hat,
            v_hat,
            n_hat,
        )
        previous = jax.tree.map(lambda g, p: g.astype(p.dtype), updates, state.g)
        return new_updates, ScaleByAdanState(m, diff_avg, n, previous, t)

    return optax.GradientTransformation(init_fn, update_fn)
