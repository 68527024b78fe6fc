"""Sign-based transforms: `scale_by_sign` and Lion's `scale_by_lion`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_dtype

_LION_MODES = ("hard", "smooth", "refined")


# optax's counterpart keeps optax.EmptyState (no class of its own).
ScaleBySignState = optax.EmptyState


@recipe
def scale_by_sign() -> optax.GradientTransformation:
    r"""Replace each element of the updates by its sign.

    $$
    u_i \leftarrow \operatorname{sign}(g_i)
    $$

    For complex elements the sign is $g_i / |g_i|$ (and 0 at 0).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_sign()
        >>> t.update(jnp.array([-3.0, 0.0, 0.2]), t.init(None))[0]
        Array([-1.,  0.,  1.], dtype=float32)

    References:
        Bernstein, Wang, Azizzadenesheli and Anandkumar, *signSGD: compressed
        optimisation for non-convex problems*, 2018.
    """

    def init_fn(params):
        del params
        return ScaleBySignState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(jnp.sign, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ScaleByLionState = optax.ScaleByLionState


@recipe
def scale_by_lion(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: float | jax.Array = 1.0,
) -> optax.GradientTransformation:
    r"""Lion's update direction: the sign of a blend of momentum and gradient.

    $$
    \begin{aligned}
    c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        u_t = \sigma(c_t) \\
    m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t
    \end{aligned}
    $$

    with $\sigma = \operatorname{sign}$ (``mode="hard"``),
    $\sigma(c) = \tanh(\beta c)$ (``"smooth"``, $\beta$ = ``smooth_beta``)
    or $\sigma(c) = c$ where $|c| < 1$ and $\operatorname{sign}(c)$
    elsewhere (``"refined"``).

    Args:
        b1: the blend $\beta_1$ of momentum and gradient, in [0, 1).
        b2: the momentum decay $\beta_2$, in [0, 1).
        mu_dtype: dtype of the momentum (``None``: the parameters' dtype).
        mode: ``"hard"``, ``"smooth"`` or ``"refined"``.
        smooth_beta: the slope $\beta$ of the ``"smooth"`` mode.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_lion()
        >>> u, state = t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))
        >>> u, state.mu
        (Array([ 1., -1.], dtype=float32), Array([ 0.02 , -0.005], dtype=float32))

    References:
        Chen et al., *Symbolic discovery of optimization algorithms*, 2023.
    """
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_range("smooth_beta", smooth_beta)
    mu_dtype = check_dtype("mu_dtype", mu_dtype)
    validate.check_choice("mode", mode, _LION_MODES)

    def direction(g, m):
        c = add(mul(1.0 - b1, g), mul(b1, m))
        if mode == "smooth":
            out = jnp.tanh(mul(smooth_beta, c))
        elif mode == "refined":
            out = jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))
        else:
            out = jnp.sign(c)
        return out.astype(g.dtype)

    def init_fn(params):
        mu = zeros_like(params, dtype=mu_dtype)
        return ScaleByLionState(count=jnp.zeros([], jnp.int32), mu=mu)

    def update_fn(updates, state, params=None):
        del params
        new_updates = jax.tree.map(direction, updates, state.mu)
        mu = tree_math.tree_update_moment(updates, state.mu, b2, 1)
        return new_updates, ScaleByLionState(tree_math.safe_increment(state.count), mu)

    return optax.GradientTransformation(init_fn, update_fn)
